"""Torch's CUDA wheel layout: CUDA libraries come from nvidia-* wheels, libcuda from the driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, have_gcc, make_dist

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

EXT = ".cpython-311-x86_64-linux-gnu.so"
NVIDIA = {  # wheel → (folder under nvidia/, sonames it ships)
    "nvidia-cublas-cu12": ("cublas", ["libcublas.so.12", "libcublasLt.so.12"]),
    "nvidia-cuda-runtime-cu12": ("cuda_runtime", ["libcudart.so.12"]),
    "nvidia-cudnn-cu12": ("cudnn", ["libcudnn.so.9"]),
    "nvidia-nccl-cu12": ("nccl", ["libnccl.so.2"]),
}


@pytest.fixture(scope="module")
def torch_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("torch")
    sp, stubs = root / "site-packages", root / "stubs"
    libcuda = build_so(stubs / "libcuda.so.1", soname="libcuda.so.1")  # the driver: not in any wheel
    shipped: dict[str, Path] = {}
    for wheel, (folder, sonames) in NVIDIA.items():
        for soname in sonames:
            shipped[soname] = build_so(sp / f"nvidia/{folder}/lib/{soname}", soname=soname)
        make_dist(sp, wheel, "12.1.0", files={f"nvidia/{folder}/__init__.py": ""},
                  existing=[f"nvidia/{folder}/lib/{s}" for s in sonames])
    # cublas needs cublasLt beside it; torch_cuda reaches every nvidia wheel through its RPATH.
    build_so(sp / "nvidia/cublas/lib/libcublas.so.12", soname="libcublas.so.12",
             needed=[shipped["libcublasLt.so.12"]], rpath="$ORIGIN")
    rpath = ":".join(f"$ORIGIN/../../nvidia/{folder}/lib" for folder, _ in NVIDIA.values())
    torch_cuda = build_so(sp / "torch/lib/libtorch_cuda.so", soname="libtorch_cuda.so",
                          needed=[*shipped.values(), libcuda], rpath=rpath)
    build_so(sp / f"torch/_C{EXT}", needed=[torch_cuda], rpath="$ORIGIN/lib")
    make_dist(sp, "torch", "2.3.1", files={"torch/__init__.py": ""},
              existing=["torch/lib/libtorch_cuda.so", f"torch/_C{EXT}"],
              requires=[f"{wheel}==12.1.0; platform_system == 'Linux'" for wheel in NVIDIA])
    return sp


def test_cuda_libraries_are_other_wheel_and_libcuda_is_the_driver(tmp_path: Path, torch_sp: Path) -> None:
    service = tmp_path / "llm"
    service.mkdir()
    (service / "serve.py").write_text("import torch\n")
    report = run_scan(ScanOptions((service,), (torch_sp,), "ubuntu-22.04"))
    needs = {(n.name, n.status): n for n in report.services[0].needs}
    libcu = sorted((name, status) for name, status in needs if name.startswith(("libcu", "libnccl")))
    assert libcu == [
        ("libcublas.so.12", "other-wheel"),
        ("libcublasLt.so.12", "other-wheel"),
        ("libcuda.so.1", "driver"),
        ("libcudart.so.12", "other-wheel"),
        ("libcudnn.so.9", "other-wheel"),
        ("libnccl.so.2", "other-wheel"),
    ]
    assert needs[("libcublas.so.12", "other-wheel")].chain[-1] == "nvidia/cublas/lib/libcublas.so.12"
    assert needs[("libcuda.so.1", "driver")].package is None
    assert report.failing is False  # nothing to apt-install: the driver is mounted at run time
