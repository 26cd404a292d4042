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
    assert str(needs[("libcublas.so.12", "other-wheel")].chain[-1]) == "nvidia/cublas/lib/libcublas.so.12"
    assert needs[("libcuda.so.1", "driver")].package is None
    assert report.failing is False  # nothing to apt-install: the driver is mounted at run time


def test_system_cuda_comes_from_the_nvidia_base_image_profile(tmp_path: Path, tmp_path_factory) -> None:
    """A CUDA extension that relies on the image's CUDA (no nvidia-* wheels)."""
    root = tmp_path_factory.mktemp("syscuda")
    sp, stubs = root / "site-packages", root / "stubs"
    needed = [build_so(stubs / s, soname=s) for s in ("libcudart.so.12", "libcudnn.so.8", "libcupti.so.12", "libcuda.so.1")]
    build_so(sp / f"kernels/_ops{EXT}", needed=needed)
    make_dist(sp, "kernels", existing=[f"kernels/_ops{EXT}"])
    service = tmp_path / "svc"
    service.mkdir()
    (service / "main.py").write_text("import kernels\n")

    def cuda_needs(base_image: str) -> list[tuple[str, str, str | None]]:
        report = run_scan(ScanOptions((service,), (sp,), base_image=base_image))
        assert (report.distro, report.base_image) == ("ubuntu-22.04", base_image)
        return sorted((n.name, n.status, n.package) for n in report.services[0].needs if n.name.startswith("libcu"))

    # What the image lacks is named as NVIDIA's repository names it, for the image's CUDA 12.1.
    assert cuda_needs("nvidia/cuda:12.1.1-runtime-ubuntu22.04") == [
        ("libcuda.so.1", "driver", None),
        ("libcudart.so.12", "base-image", "cuda-cudart-12-1"),
        ("libcudnn.so.8", "missing", "libcudnn8"),
        ("libcupti.so.12", "missing", "cuda-cupti-12-1"),
    ]
    assert cuda_needs("nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04") == [
        ("libcuda.so.1", "driver", None),
        ("libcudart.so.12", "base-image", "cuda-cudart-12-1"),
        ("libcudnn.so.8", "base-image", "libcudnn8"),
        ("libcupti.so.12", "missing", "cuda-cupti-12-1"),
    ]


def test_the_profile_is_chosen_from_the_services_from_chain(tmp_path: Path, tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp("autoprofile")
    sp, stubs = root / "site-packages", root / "stubs"
    needed = [build_so(stubs / s, soname=s) for s in ("libcudart.so.12", "libcudnn.so.8", "libcupti.so.12")]
    build_so(sp / f"kernels/_ops{EXT}", needed=needed)
    make_dist(sp, "kernels", existing=[f"kernels/_ops{EXT}"])
    fleet = tmp_path / "fleet"
    (fleet / "docker/family-llm").mkdir(parents=True)
    (fleet / "docker/family-llm/Dockerfile").write_text("FROM nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04\nENV LD_LIBRARY_PATH=/opt/llm/lib:$LD_LIBRARY_PATH\n")
    for name, base in (("llm", "family-llm"), ("plain", "python:3.11-slim")):
        (fleet / "services" / name).mkdir(parents=True)
        (fleet / "services" / name / "main.py").write_text("import kernels\n")
        (fleet / "services" / name / "Dockerfile").write_text(f"FROM {base}\n")

    report = run_scan(ScanOptions((fleet / "services",), (sp,)))
    llm, plain = report.services
    assert (llm.base_image, llm.families) == ("nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04", ("family-llm",))
    assert sorted((n.name, n.status, n.package) for n in llm.needs if n.name.startswith("libcud")) == [
        ("libcudart.so.12", "base-image", "cuda-cudart-12-1"),
        ("libcudnn.so.8", "base-image", "libcudnn8"),
    ]
    cudnn = next(n for n in llm.needs if n.name == "libcudnn.so.8")
    assert cudnn.tried == ()  # the profile provides it: where the loader looked is beside the point
    # CUPTI is in no runtime image; the family's ENV extends the profile's LD_LIBRARY_PATH.
    cupti = next(n for n in llm.needs if n.name == "libcupti.so.12")
    assert (cupti.status, cupti.package, cupti.tried) == (
        "missing",
        "cuda-cupti-12-1",  # CUDA_VERSION from the profile's Env
        ("/opt/llm/lib", "/usr/local/nvidia/lib", "/usr/local/nvidia/lib64"),
    )
    # A base we carry no profile of: nothing of CUDA is assumed present.
    assert (plain.base_image, plain.families) == (None, ())
    # No CUDA version in python:3.11-slim: versioned CUDA package names cannot be completed.
    assert sorted((n.name, n.status, n.package) for n in plain.needs if n.name.startswith("libcud")) == [
        ("libcudart.so.12", "unmapped", None),
        ("libcudnn.so.8", "missing", "libcudnn8"),
    ]
    cudart = next(n for n in plain.needs if n.name == "libcudart.so.12")
    assert cudart.tried == ()  # python:3.11-slim sets no LD_LIBRARY_PATH
