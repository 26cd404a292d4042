"""The issue's acceptance on real wheels from the package index (cached venvs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.scan import ScanOptions, run_scan

pytestmark = pytest.mark.network


def _scan(tmp_path: Path, site_packages: Path, source: str):
    service = tmp_path / "face"
    service.mkdir()
    (service / "app.py").write_text(source)
    return run_scan(ScanOptions((service,), (site_packages,), "ubuntu-22.04")).services[0]


def _apt(service) -> list[tuple[str, str | None, str, str]]:
    """What the image must install: weak hint-tier evidence is not a need."""
    return [
        (n.name, n.package, n.status, n.tier.value)
        for n in service.needs
        if n.status in ("missing", "unmapped") and n.tier.value != "hint"
    ]


def test_opencv_python_needs_gl_and_glib_and_its_qt_plugin_needs_x11(tmp_path: Path, fleet_site_packages: Path) -> None:
    service = _scan(tmp_path, fleet_site_packages, "import cv2\nimport numpy\n")
    assert _apt(service) == [
        ("libGL.so.1", "libgl1", "missing", "required"),
        ("libglib-2.0.so.0", "libglib2.0-0", "missing", "required"),
        ("libgthread-2.0.so.0", "libglib2.0-0", "missing", "required"),
        ("libxcb.so.1", "libxcb1", "missing", "required"),  # via bundled libavdevice
        ("libICE.so.6", "libice6", "missing", "optional"),
        ("libSM.so.6", "libsm6", "missing", "optional"),
        ("libX11.so.6", "libx11-6", "missing", "optional"),
        ("libXext.so.6", "libxext6", "missing", "optional"),
    ]
    x11 = next(n for n in service.needs if n.name == "libX11.so.6")
    assert str(x11.chain[3]) == "cv2/qt/plugins/platforms/libqxcb.so"
    openblas = [n for n in service.needs if n.name.startswith("libscipy_openblas")]
    assert [(n.status, n.tier.value, str(n.chain[2])) for n in openblas] == [("bundled", "required", "numpy 2.4.6")]


def test_opencv_python_headless_needs_no_apt_package(tmp_path: Path, wheel_env) -> None:
    site_packages = wheel_env("opencv-headless", ["opencv-python-headless==4.14.0.94", "numpy==2.4.6"])
    service = _scan(tmp_path, site_packages, "import cv2\n")
    assert _apt(service) == []
    assert sorted({n.status for n in service.needs if n.tier.value != "hint"}) == ["base-image", "bundled", "libc"]
    # cv2 probes OpenCL with dlopen: a soname string in its read-only data, weak evidence.
    opencl = next(n for n in service.needs if n.name == "libOpenCL.so.1")
    assert (opencl.tier.value, opencl.rule) == ("hint", "soname string in read-only data")


def test_an_opencv_headless_family_installing_gl_and_x11_gets_each_as_unused(tmp_path: Path, wheel_env) -> None:
    site_packages = wheel_env("opencv-headless", ["opencv-python-headless==4.14.0.94", "numpy==2.4.6"])
    (tmp_path / "docker/family-headless").mkdir(parents=True)
    (tmp_path / "docker/family-headless/Dockerfile").write_text(
        "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "        libgl1 libsm6 \\\n        libxext6 libxrender1 \\\n    && rm -rf /var/lib/apt/lists/*\n"
    )
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents/detect.py").write_text("import cv2\nimport numpy as np\n")
    (tmp_path / "depaudit.toml").write_text(
        f'[families.family-headless]\nsite-packages = ["{site_packages}"]\n\n'
        '[services.detector]\nentry = "agents/detect.py"\nfamily = "family-headless"\n'
    )
    (plan,) = run_scan(ScanOptions((), config=tmp_path / "depaudit.toml")).families
    reason = "no service built on family-headless needs it: no import, library or program leads to it"
    assert [(i.package, i.line, i.because) for i in plan.unused] == [
        ("libgl1", 3, reason), ("libsm6", 3, reason), ("libxext6", 4, reason), ("libxrender1", 4, reason)
    ]
    assert plan.add == plan.redundant == plan.build_only == ()
    assert plan.services == ("detector",)
