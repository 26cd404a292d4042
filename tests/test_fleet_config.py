"""A monorepo fleet described by depaudit.toml: entry-script services following local imports,
families with their own Python environment, and an explicit service → family mapping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from depaudit.cli import main
from depaudit.collect.imports import collect_imports
from depaudit.collect.services import entry_service
from depaudit.findings import FindingKind
from depaudit.evidence import Tier
from depaudit.plan.model import PlanItem
from depaudit.report import ScanReport
from depaudit.scan import InputError, ScanOptions, run_scan
from helpers import build_so, build_vision_env, have_gcc, make_dist

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

CONFIG = """\
distro = "ubuntu-22.04"

[families.base-gpu]
dockerfile = "docker/base-gpu/Dockerfile"

[families.family-vision]
dockerfile = "docker/family-vision/Dockerfile"
parent = "base-gpu"
site-packages = ["envs/vision/site-packages"]

[families.family-audio]
dockerfile = "docker/family-audio/Dockerfile"   # its parent comes from its FROM
site-packages = ["envs/audio/site-packages"]

[services.FaceRecognition]
entry = "agents/face.py"
family = "family-vision"
source-roots = ["."]

[services.Speaker]
entry = "agents/speak.py"
family = "family-audio"
source-roots = ["."]
"""

FILES = {
    "docker/base-gpu/Dockerfile": "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*\n",
    "docker/family-vision/Dockerfile": "FROM base-gpu\n",
    "docker/family-audio/Dockerfile": "FROM registry.example/ml/base-gpu:2024\n",
    "agents/face.py": "import shared.vision\nfrom helpers_here import greet\n",
    "agents/speak.py": "from shared import audio\n",
    "agents/helpers_here.py": "import json\n\ndef greet():\n    return json.dumps('hi')\n",
    "agents/unrelated.py": "import torch\n",  # in the entry's folder, never imported
    "shared/__init__.py": "",
    "shared/vision.py": "from . import common\nimport visionlib\n",
    "shared/common.py": "import os\n",
    "shared/audio.py": "import audiolib\n",
    "shared/heavy.py": "import torch\n",  # a module of the shared package nobody imports
}


def _audio_env(root: Path) -> Path:
    """audiolib: an extension module linking libportaudio.so.2, as a sounddevice-like wheel."""
    sp = root / "site-packages"
    portaudio = build_so(root / "stubs/libportaudio.so.2", soname="libportaudio.so.2")
    build_so(sp / "audiolib/_pa.cpython-311-x86_64-linux-gnu.so", needed=[portaudio])
    make_dist(sp, "audiolib", "1.0", files={"audiolib/__init__.py": ""}, existing=["audiolib/_pa.cpython-311-x86_64-linux-gnu.so"])
    return sp


def _monorepo(root: Path, config: str = CONFIG, config_name: str = "depaudit.toml") -> Path:
    build_vision_env(root / "envs/vision")
    _audio_env(root / "envs/audio")
    for relative, text in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / config_name).write_text(config)
    return root / config_name


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _monorepo(tmp_path_factory.mktemp("monorepo"))


@pytest.fixture(scope="module")
def report(monorepo: Path) -> ScanReport:
    return run_scan(ScanOptions((), config=monorepo))


def test_an_entry_script_reads_only_the_local_modules_it_reaches(monorepo: Path) -> None:
    root = monorepo.parent
    service = entry_service("FaceRecognition", root / "agents/face.py", (root,), root, ())
    collected = collect_imports(service)
    assert [p.relative_to(root).as_posix() for p in collected.files] == [
        "agents/face.py",
        "agents/helpers_here.py",  # the script's own folder is sys.path[0]
        "shared/__init__.py",
        "shared/common.py",  # `from . import common` inside shared/vision.py
        "shared/vision.py",
    ]
    assert [(r.file, r.line, r.module, r.scope.value) for r in collected.imports] == [
        ("agents/face.py", 1, "shared.vision", "local"),
        ("agents/face.py", 2, "helpers_here", "local"),
        ("agents/helpers_here.py", 1, "json", "stdlib"),
        ("shared/common.py", 1, "os", "stdlib"),
        ("shared/vision.py", 1, "shared", "local"),
        ("shared/vision.py", 2, "visionlib", "third-party"),
    ]


def test_each_family_resolves_against_its_own_environment(report: ScanReport) -> None:
    services = {s.name: s for s in report.services}
    assert sorted(services) == ["FaceRecognition", "Speaker"]
    face, speaker = services["FaceRecognition"], services["Speaker"]
    assert [(i.record.module, i.distribution) for i in face.imports] == [("visionlib", "visionlib")]
    assert [(i.record.module, i.distribution) for i in speaker.imports] == [("audiolib", "audiolib")]
    assert face.families == ("family-vision", "base-gpu")
    assert speaker.families == ("family-audio", "base-gpu")
    assert face.findings == speaker.findings == ()  # torch in unreached files is never looked up
    assert report.distribution_count == 4  # visionlib, helperlib, unusedlib + audiolib


def test_the_plan_adds_each_familys_own_needs(report: ScanReport) -> None:
    plans = {plan.name: plan for plan in report.families}
    assert sorted(plans) == ["base-gpu", "family-audio", "family-vision"]
    assert plans["family-vision"].add == (
        PlanItem(
            "libgl1",
            Tier.REQUIRED,
            "FaceRecognition needs the library libGL.so.1 (required): shared/vision.py:2 import visionlib",
        ),
    )
    assert [i.package for i in plans["family-audio"].add] == ["libportaudio2"]
    assert plans["family-audio"].parent == "base-gpu"
    assert plans["base-gpu"].add == ()
    assert plans["family-vision"].dockerfile == "docker/family-vision/Dockerfile"


def test_the_same_config_in_pyproject_gives_the_same_report(tmp_path: Path, report: ScanReport) -> None:
    table = CONFIG.replace("[families.", "[tool.depaudit.families.").replace("[services.", "[tool.depaudit.services.")
    table = table.replace('distro = "ubuntu-22.04"', '[tool.depaudit]\ndistro = "ubuntu-22.04"')
    config = _monorepo(tmp_path, '[project]\nname = "mono"\n\n' + table, "pyproject.toml")
    again = run_scan(ScanOptions((), config=config))
    assert [(s.name, s.needs) for s in again.services] == [(s.name, s.needs) for s in report.services]
    assert [(p.name, p.add) for p in again.families] == [(p.name, p.add) for p in report.families]


def test_depaudit_scan_finds_the_config_in_the_current_folder(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(monorepo.parent)
    assert main(["scan", "--format", "patch", "--fail-on", "never"]) == 0
    assert capsys.readouterr().out == PATCH


PATCH = """\
--- a/docker/family-audio/Dockerfile
+++ b/docker/family-audio/Dockerfile
@@ -1 +1,4 @@
 FROM registry.example/ml/base-gpu:2024
+RUN apt-get update && apt-get install -y --no-install-recommends \\
+        libportaudio2 \\
+    && rm -rf /var/lib/apt/lists/*
--- a/docker/family-vision/Dockerfile
+++ b/docker/family-vision/Dockerfile
@@ -1 +1,4 @@
 FROM base-gpu
+RUN apt-get update && apt-get install -y --no-install-recommends \\
+        libgl1 \\
+    && rm -rf /var/lib/apt/lists/*
"""


def test_config_errors_are_usage_errors_naming_the_key(
    tmp_path: Path, monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "depaudit.toml"
    broken.write_text(CONFIG.replace('family = "family-audio"', 'family = "family-sound"'))
    # Copies, not links: a config may name only its own project's files (links out are refused).
    shutil.copytree(monorepo.parent / "agents", tmp_path / "agents", symlinks=True)
    shutil.copytree(monorepo.parent / "docker", tmp_path / "docker", symlinks=True)
    assert main(["scan", "--config", str(broken)]) == 2
    assert capsys.readouterr().err.strip() == "depaudit: error: [services.Speaker] family: no family named 'family-sound'"

    broken.write_text(CONFIG.replace("agents/speak.py", "agents/talk.py"))
    with pytest.raises(InputError, match=r"\[services.Speaker\] entry: no such file: .*agents/talk.py"):
        run_scan(ScanOptions((), config=broken))


def test_no_path_and_no_config_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["scan"]) == 2
    assert "no PATH given and no depaudit.toml" in capsys.readouterr().err


def test_a_family_found_by_the_glob_needs_no_dockerfile_key(tmp_path: Path) -> None:
    config = _monorepo(
        tmp_path,
        '[services.FaceRecognition]\nentry = "agents/face.py"\nfamily = "family-vision"\nsource-roots = ["."]\n\n'
        '[families.family-vision]\nsite-packages = ["envs/vision/site-packages"]\n',
    )
    report = run_scan(ScanOptions((), config=config))
    plans = {plan.name: plan for plan in report.families}
    assert sorted(plans) == ["base-gpu", "family-vision"]  # both found as docker/<name>/Dockerfile
    assert plans["family-vision"].parent == "base-gpu"
    assert [i.package for i in plans["family-vision"].add] == ["libgl1"]


def test_hoist_never_moves_a_package_into_a_family_a_cpu_image_is_built_on(tmp_path: Path) -> None:
    # Speaker needs visionlib too, so both GPU families need libgl1.
    both = CONFIG.replace(
        'site-packages = ["envs/audio/site-packages"]',
        'site-packages = ["envs/audio/site-packages", "envs/vision/site-packages"]',
    )
    cpu = '\n[families.family-cpu]\ndockerfile = "docker/family-cpu/Dockerfile"\ngpu = false\n'
    config = _monorepo(tmp_path, both + cpu)
    (tmp_path / "agents/speak.py").write_text("from shared import audio\nimport visionlib\n")
    (tmp_path / "docker/family-cpu").mkdir()
    (tmp_path / "docker/family-cpu/Dockerfile").write_text("FROM base-gpu\n")

    plans = {p.name: p for p in run_scan(ScanOptions((), config=config, hoist=True)).families}
    assert plans["base-gpu"].add == ()  # family-cpu is built on base-gpu: it would gain libgl1
    assert [i.package for i in plans["family-vision"].add] == ["libgl1"]
    assert [i.package for i in plans["family-audio"].add] == ["libgl1", "libportaudio2"]

    config.write_text(both)
    plans = {p.name: p for p in run_scan(ScanOptions((), config=config, hoist=True)).families}
    assert plans["base-gpu"].add == (
        PlanItem("libgl1", Tier.REQUIRED, "hoisted: family-audio, family-vision all need it"),
    )
    assert [i.package for i in plans["family-audio"].add] == ["libportaudio2"]
    assert plans["family-vision"].add == ()


def test_unparsable_local_module_is_a_finding_and_the_closure_goes_on(tmp_path: Path) -> None:
    config = _monorepo(tmp_path)
    (tmp_path / "shared/common.py").write_text("print 'python 2'\nimport visionlib.extra\n")
    report = run_scan(ScanOptions((), config=config))
    face = next(s for s in report.services if s.name == "FaceRecognition")
    assert [(f.kind, f.path) for f in face.findings] == [(FindingKind.PARSE_ERROR, "shared/common.py")]
    assert [i.package for i in next(p for p in report.families if p.name == "family-vision").add] == ["libgl1"]


def _vision_rootfs(root: Path) -> Path:
    """An unpacked image whose dpkg database says libgl1 ships libGL.so.1 (and libc6, zlib1g
    the rest of what visionlib links)."""
    lib = root / "usr/lib/x86_64-linux-gnu"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    status = []
    for package, soname in (("libgl1", "libGL.so.1"), ("libc6", "libc.so.6"), ("zlib1g", "libz.so.1")):
        build_so(lib / f"{soname}.0", soname=soname)
        os.symlink(f"{soname}.0", lib / soname)
        status.append(f"Package: {package}\nStatus: install ok installed\nVersion: 1\n")
        (root / f"var/lib/dpkg/info/{package}:amd64.list").write_text(f"/usr/lib/x86_64-linux-gnu/{soname}.0\n/usr/lib/x86_64-linux-gnu/{soname}\n")
    (root / "var/lib/dpkg/status").write_text("\n".join(status))
    return root


def test_a_familys_base_image_can_be_a_rootfs_folder(tmp_path: Path) -> None:
    config = CONFIG.replace(
        'parent = "base-gpu"\n', 'parent = "base-gpu"\nbase-image = "images/vision"\n'
    )
    path = _monorepo(tmp_path, config)
    _vision_rootfs(tmp_path / "images/vision")
    report = run_scan(ScanOptions((), config=path))
    face = next(s for s in report.services if s.name == "FaceRecognition")
    gl = next(n for n in face.needs if n.name == "libGL.so.1")
    assert (gl.status, gl.package, gl.found_at) == ("base-image", "libgl1", "/usr/lib/x86_64-linux-gnu/libGL.so.1")
    assert face.base_image == str(tmp_path / "images/vision")
    plans = {p.name: p for p in report.families}
    assert plans["family-vision"].add == ()
    assert [i.package for i in plans["family-audio"].add] == ["libportaudio2"]  # still on the profile


def test_the_command_line_environment_wins_over_the_config(tmp_path: Path) -> None:
    path = _monorepo(tmp_path)
    report = run_scan(ScanOptions((), site_packages=(tmp_path / "envs/audio/site-packages",), config=path))
    face = next(s for s in report.services if s.name == "FaceRecognition")
    assert [(i.record.module, i.distribution) for i in face.imports] == [("visionlib", None)]
    assert [(f.kind, f.path, f.line) for f in face.findings] == [(FindingKind.MISSING_MODULE, "shared/vision.py", 2)]


def test_services_sharing_a_requirements_file_have_it_read_once_and_each_gets_its_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import depaudit.python.requirements as requirements

    config = CONFIG.replace(
        'family = "family-audio"\nsource-roots = ["."]',
        'family = "family-vision"\nsource-roots = ["."]\nrequirements = ["requirements.txt"]',
    ).replace(
        'entry = "agents/face.py"\nfamily = "family-vision"\nsource-roots = ["."]',
        'entry = "agents/face.py"\nfamily = "family-vision"\nsource-roots = ["."]\nrequirements = ["requirements.txt"]',
    )
    root = _monorepo(tmp_path / "repo", config)
    (root.parent / "requirements.txt").write_text("visionlib==2.0\nnot-here==1.0\n")
    calls: list[object] = []
    real = requirements.read_requirements
    monkeypatch.setattr(requirements, "read_requirements", lambda *args: calls.append(args) or real(*args))
    report = run_scan(ScanOptions((), config=root))
    assert len(calls) == 1  # two services, one family, one file
    for service in report.services:
        assert [(f.kind, f.path, f.line) for f in service.findings if f.kind is FindingKind.NOT_INSTALLED] == [
            (FindingKind.NOT_INSTALLED, "requirements.txt", 2)
        ], service.name
