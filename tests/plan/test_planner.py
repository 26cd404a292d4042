"""The apt diff per family, on a small fleet of real Dockerfiles and gcc-built wheels."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.evidence import Tier
from depaudit.plan.model import PlanItem
from depaudit.scan import ScanOptions, run_scan
from helpers import build_vision_env, have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

DOCKERFILES = {
    "docker/base/Dockerfile": "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n    python3 \\\n    libgomp1\n",
    "docker/family-a/Dockerfile": "FROM base\nRUN apt-get install -y \\\n    libgomp1 \\\n    libx11-dev \\\n    libsm6 \\\n    python3\n",
    "docker/family-c/Dockerfile": "FROM base\nRUN apt-get install -y curl python3.11 libpython3.11-stdlib python3.11-dev\n",
    "docker/family-ff/Dockerfile": "FROM base\nRUN apt-get install -y libgl1 libsm6 ffmpeg\n",
    "docker/family-run/Dockerfile": (
        "FROM base\nRUN apt-get install -y tini curl wget git\nRUN pip install 'lib @ git+https://example.org/lib.git'\n"
        'ENTRYPOINT ["/usr/bin/tini", "--"]\nHEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1\n'
    ),
    "docker/family-entry/Dockerfile": (
        "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "    python3.11 python3.11-dev python3-pip tini curl wget git ca-certificates\n"
        'ENTRYPOINT ["/usr/bin/tini", "--"]\nHEALTHCHECK CMD curl -f http://localhost:8080/health || exit 1\n'
    ),
    "docker/family-headless/Dockerfile": "FROM base\nRUN apt-get update && apt-get install -y libgl1 libsm6 libxext6 libxrender1 && rm -rf /var/lib/apt/lists/*\n",
}
SERVICES = {
    "svc-a": ("family-a", "import visionlib\n"),
    "svc-c": ("family-c", "import visionlib\n"),
    "svc-ff": ("family-ff", "import visionlib\n"),
    "svc-run": ("family-run", "import json\n"),
    "svc-headless": ("family-headless", "import json\n"),
    "svc-entry": ("family-entry", "import json\n"),
}


def _write_fleet(root: Path) -> Path:
    """The fleet's files below root; its site-packages."""
    site_packages = build_vision_env(root / "env")
    for path, text in DOCKERFILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for name, (family, source) in SERVICES.items():
        (root / "services" / name).mkdir(parents=True)
        (root / "services" / name / "main.py").write_text(source)
        (root / "services" / name / "Dockerfile").write_text(f"FROM {family}\n")
    return site_packages


def _plans(root: Path, *, hoist: bool = False, config: str | None = None) -> dict:
    site_packages = _write_fleet(root)
    if config is not None:
        (root / "depaudit.toml").write_text(config)
    options = ScanOptions((root / "services",), (site_packages,), hoist=hoist, config=root / "depaudit.toml" if config else None)
    report = run_scan(options)
    return {family.name: family for family in report.families}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _plans(tmp_path_factory.mktemp("fleet"))


def test_two_families_sharing_a_base_each_get_the_package(plans: dict) -> None:
    assert [i.package for i in plans["family-a"].add] == ["libgl1"]
    assert [i.package for i in plans["family-c"].add] == ["libgl1"]
    assert plans["base"].add == ()
    assert plans["family-a"].add[0] == PlanItem(
        "libgl1", Tier.REQUIRED, "svc-a needs the library libGL.so.1 (required): svc-a/main.py:1 import visionlib"
    )


def test_what_the_base_image_provides_is_never_added(plans: dict) -> None:
    # visionlib also needs libz.so.1: zlib1g is in the nvidia/cuda image.
    assert all(item.package != "zlib1g" for plan in plans.values() for item in plan.add)


def test_a_parents_package_is_redundant_and_dev_packages_are_build_only(plans: dict) -> None:
    family = plans["family-a"]
    assert family.parent == "base"
    assert family.redundant == (PlanItem("python3", Tier.OPTIONAL, "already installed by the parent family base", 6),)
    assert family.build_only == (PlanItem("libx11-dev", Tier.OPTIONAL, "a build-time package in a runtime image", 4),)
    # libsm6: only the plugin of visionlib-like wheels would use X11 session libraries; here nothing does.
    # libgomp1: base installs it too, but nothing needs it, so base's plan drops it: no reason to call it redundant.
    assert [(i.package, i.line) for i in family.unused] == [("libgomp1", 3), ("libsm6", 5)]


def test_a_family_whose_services_need_no_gl_gets_every_gl_package_as_unused(plans: dict) -> None:
    family = plans["family-headless"]
    assert family.services == ("svc-headless",)
    reason = "no service built on family-headless needs it: no import, library or program leads to it"
    assert family.unused == tuple(
        PlanItem(package, Tier.OPTIONAL, reason, 2) for package in ("libgl1", "libsm6", "libxext6", "libxrender1")
    )
    assert family.add == family.redundant == family.build_only == ()


def test_the_python_runtime_is_never_unused(plans: dict) -> None:
    assert plans["base"].installs == ("python3", "libgomp1")
    assert [(i.package, i.line) for i in plans["base"].unused] == [("libgomp1", 4)]  # python3 stays


def test_hoist_moves_a_package_several_families_need_to_their_parent(tmp_path: Path) -> None:
    plans = _plans(tmp_path, hoist=True)
    assert plans["base"].add == (PlanItem("libgl1", Tier.REQUIRED, "hoisted: family-a, family-c all need it"),)
    assert plans["family-a"].add == plans["family-c"].add == ()


def test_a_package_is_never_redundant_because_of_one_the_plan_removes(plans: dict) -> None:
    # ffmpeg pulls libgl1 in (through libavdevice58), but nothing needs ffmpeg: the plan removes it,
    # so libgl1, which visionlib needs, stays; before, --prune removed both.
    family = plans["family-ff"]
    assert family.redundant == family.add == ()
    assert [(i.package, i.line) for i in family.unused] == [("libsm6", 2), ("ffmpeg", 2)]


def test_every_spelling_of_the_interpreter_is_runtime_and_its_dev_package_build_only(plans: dict) -> None:
    family = plans["family-c"]
    assert [(i.package, i.line) for i in family.build_only] == [("python3.11-dev", 2)]
    assert [i.package for i in family.unused] == ["curl"]  # python3.11 and libpython3.11-stdlib stay


def test_what_the_image_runs_itself_is_kept(plans: dict) -> None:
    # tini is the ENTRYPOINT, curl the HEALTHCHECK's program, git what pip clones a git+ URL with.
    assert [(i.package, i.line) for i in plans["family-run"].unused] == [("wget", 2)]


def test_a_base_dockerfile_keeps_its_interpreter_entrypoint_and_health_check(plans: dict) -> None:
    family = plans["family-entry"]
    assert family.parent is None and family.add == ()
    assert [i.package for i in family.build_only] == ["python3.11-dev"]
    assert family.redundant == (
        PlanItem("ca-certificates", Tier.OPTIONAL, "the base image nvidia/cuda:12.1.1-runtime-ubuntu22.04 provides it", 3),
    )
    assert [(i.package, i.line) for i in family.unused] == [("wget", 3), ("git", 3)]
    # python3.11, python3-pip (runtime), tini (ENTRYPOINT) and curl (HEALTHCHECK) stay.
    assert family.packages_after == ("python3.11", "python3-pip", "tini", "curl")


def test_the_configs_keep_leaves_a_package_alone(tmp_path: Path) -> None:
    config = '[families.family-run]\nkeep = ["wget"]\n[families.family-headless]\nkeep = ["libx*"]\n'
    plans = _plans(tmp_path, config=config)
    assert plans["family-run"].unused == ()
    assert [i.package for i in plans["family-headless"].unused] == ["libgl1", "libsm6"]


def test_write_prune_then_a_rescan_has_nothing_missing_and_nothing_to_change(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    site_packages = _write_fleet(tmp_path)

    def scan(*extra: str) -> dict:
        command = [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", str(site_packages), "--no-cache"]
        result = subprocess.run([*command, "--format", "json", *extra], cwd=tmp_path, capture_output=True, text=True,
                                env={**os.environ, "NO_COLOR": "1"})
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)

    scan("--write", "--prune", "--output-dir", str(tmp_path / "out"))
    assert "libgl1 [platform:dpkg]" in (tmp_path / "out/bindep/family-ff.txt").read_text().splitlines()
    assert "RUN apt-get install -y libgl1\n" in (tmp_path / "docker/family-ff/Dockerfile").read_text()
    again = scan()
    assert [(s["name"], n["name"]) for s in again["services"] for n in s["needs"] if n["status"] == "missing"] == []
    assert {f["name"]: [f[k] for k in ("add", "unused", "redundant")] for f in again["families"]} == {
        f["name"]: [[], [], []] for f in again["families"]
    }


def test_every_line_carries_the_megabytes_it_adds_or_frees(plans: dict) -> None:
    # From rules/sizes/ubuntu-22.04.json.gz (jammy's Installed-Size): ffmpeg brings 200 MB of
    # libraries that nothing kept needs; a redundant line frees nothing, its package stays.
    family = plans["family-ff"]
    assert [(i.package, i.kib) for i in family.unused] == [("libsm6", 482), ("ffmpeg", 205504)]
    assert (family.adds_kib, family.frees_kib) == (0, 205675)  # what the two share is freed once
    added = plans["family-a"].add[0]
    assert (added.package, added.kib, plans["family-a"].adds_kib) == ("libgl1", 190370, 190370)
    assert [(i.package, i.kib) for i in plans["family-a"].redundant] == [("python3", 0)]
    assert [(i.package, i.kib) for i in plans["family-entry"].redundant] == [("ca-certificates", 0)]
