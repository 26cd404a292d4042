"""The NVIDIA driver's files by capability: a need for one is `driver` when the image's
NVIDIA_DRIVER_CAPABILITIES mounts it, else `capability` (DA204), naming the ENV line to change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from depaudit.emit.json_report import load_schema
from helpers import build_so, have_gcc, make_dist

CUDA = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
FAMILY = "docker/family-gpu/Dockerfile"


def _depaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True, cwd=cwd)


def _fleet(root: Path, family_lines: str, source: str) -> Path:
    """A fleet by the conventions: services/probe built FROM family-gpu, built FROM the CUDA image."""
    service = root / "services" / "probe"
    service.mkdir(parents=True)
    (service / "main.py").write_text(source)
    (service / "Dockerfile").write_text("FROM family-gpu\nCOPY . /app\n")
    family = root / FAMILY
    family.parent.mkdir(parents=True)
    family.write_text(f"FROM {CUDA}\n\nENV DEBIAN_FRONTEND=noninteractive\n{family_lines}")
    (root / "sp").mkdir()
    return root


def _scan(root: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = _depaudit("scan", "services", "--site-packages", "sp", "--format", "json", "--no-cache", *args, cwd=root)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    return result.returncode, report


def _needs(report: dict) -> list[tuple[str, str, str | None, str]]:  # type: ignore[type-arg]
    """Every need but glibc's (a gcc-built object links libc.so.6)."""
    needs = [n for s in report["services"] for n in s["needs"] if n["status"] != "libc"]
    return [(n["name"], n["status"], n["code"], n["chain"][-1]) for n in needs]


SMI = 'import subprocess\n\nprint(subprocess.check_output(["nvidia-smi"]))\n'


def test_nvidia_smi_is_the_drivers_on_the_cuda_image(tmp_path: Path) -> None:
    code, report = _scan(_fleet(tmp_path, "", SMI))
    assert (code, _needs(report)) == (
        0,
        [(
            "nvidia-smi", "driver", None,
            "NVIDIA driver (utility): the NVIDIA container runtime mounts it from the host driver: "
            f"NVIDIA_DRIVER_CAPABILITIES compute,utility, set by the base image {CUDA}",
        )],
    )


def test_nvidia_smi_without_utility_names_the_env_line_to_change(tmp_path: Path) -> None:
    root = _fleet(tmp_path, "ENV NVIDIA_DRIVER_CAPABILITIES=compute\n", SMI)
    code, report = _scan(root)
    assert (code, _needs(report)) == (
        1,
        [(
            "nvidia-smi", "capability", "DA204",
            "NVIDIA driver (utility): the NVIDIA driver ships it, but the image's NVIDIA_DRIVER_CAPABILITIES "
            f"(compute, set by {FAMILY}:4) does not ask for utility: "
            f"change {FAMILY}:4 to ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        )],
    )
    assert report["services"][0]["needs"][0]["package"] is None
    assert [f["add"] for f in report["families"]] == [[]]  # an ENV line fixes it: no package to add
    sarif = json.loads(_depaudit("scan", "services", "--site-packages", "sp", "--format", "sarif", "--no-cache", cwd=root).stdout)
    [result] = sarif["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("DA204", "error")
    assert f"does not ask for utility: change {FAMILY}:4 to ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility" in result["message"]["text"]


NVCUVID = "import decoder\n"


@pytest.fixture()
def nvcuvid_fleet(tmp_path: Path) -> Path:
    """An extension module (gcc-built, in a wheel-shaped dist) linked against the driver's video decoder."""
    if not have_gcc():
        pytest.skip("gcc is not installed: cannot build ELF fixtures")
    root = _fleet(tmp_path, "", NVCUVID)
    stub = build_so(tmp_path / "stubs" / "libnvcuvid.so.1", soname="libnvcuvid.so.1")  # the driver's: in no wheel
    build_so(root / "sp" / "decoder" / "_nvdec.so", needed=[stub])
    make_dist(
        root / "sp", "decoder", files={"decoder/__init__.py": "from . import _nvdec\n"},
        existing=["decoder/_nvdec.so"], top_level=["decoder"],
    )
    return root


def test_libnvcuvid_needs_video_in_the_capabilities(nvcuvid_fleet: Path) -> None:
    code, report = _scan(nvcuvid_fleet)
    assert (code, _needs(report)) == (
        1,
        [(
            "libnvcuvid.so.1", "capability", "DA204",
            "NVIDIA driver (video): the NVIDIA driver ships it, but the image's NVIDIA_DRIVER_CAPABILITIES "
            f"(compute,utility, set by the base image {CUDA}) does not ask for video: "
            f"add ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,video to {FAMILY}",
        )],
    )
    code, report = _scan(nvcuvid_fleet, "--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video")
    assert (code, _needs(report)) == (
        0,
        [(
            "libnvcuvid.so.1", "driver", None,
            "NVIDIA driver (video): the NVIDIA container runtime mounts it from the host driver: "
            "NVIDIA_DRIVER_CAPABILITIES compute,utility,video, set by --env",
        )],
    )


def test_a_dockerfile_env_line_asking_for_video_mounts_libnvcuvid(nvcuvid_fleet: Path) -> None:
    family = nvcuvid_fleet / FAMILY
    family.write_text(family.read_text() + "ENV NVIDIA_DRIVER_CAPABILITIES=video,utility\n")
    code, report = _scan(nvcuvid_fleet)
    assert (code, [need[:3] for need in _needs(report)]) == (0, [("libnvcuvid.so.1", "driver", None)])
