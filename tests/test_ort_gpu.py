"""onnxruntime-gpu's CUDA provider loads cuDNN and cuFFT by names it builds at run time: the needs
come from rules/python/packages.toml, for the CUDA major of that build, and say what provides them."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.packages.model import Need
from depaudit.packages.python_rules import load_python_rules
from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, have_gcc, make_dist

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

EXT = ".cpython-311-x86_64-linux-gnu.so"
BASE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
RULE = load_python_rules()["onnxruntime-gpu"]
# What 1.31.1's provider holds of the names it dlopens: the compiler splits "libcudnn.so.9" and
# "libcufft.so.12" into overlapping 8-byte immediates, so only these fragments are in the file.
FRAGMENTS = ("libcudnn", "dnn.so.9", "libcufft", "ft.so.12", "cuDNN is not available. Install cuDNN")


def _ort(root: Path, version: str, cuda: str, provider_needs: tuple[str, ...]) -> Path:
    """An onnxruntime-gpu-shaped distribution: the extension module, and the CUDA and TensorRT
    providers that only a session loads (no extension module links them)."""
    sp, stubs = root / "site-packages", root / "stubs"
    fragments = stubs / "fragments.c"
    fragments.parent.mkdir(parents=True, exist_ok=True)
    fragments.write_text("".join(f'const char depaudit_fragment_{i}[] = "{text}";\n' for i, text in enumerate(FRAGMENTS)))
    needed = [build_so(stubs / name, soname=name) for name in provider_needs]
    capi = "onnxruntime/capi"
    build_so(sp / f"{capi}/libonnxruntime_providers_cuda.so", needed=needed, extra=[str(fragments)])
    cudnn = build_so(stubs / "libcudnn.so.9", soname="libcudnn.so.9")
    cudart = build_so(stubs / f"libcudart.so.{cuda}", soname=f"libcudart.so.{cuda}")
    build_so(sp / f"{capi}/libonnxruntime_providers_tensorrt.so", needed=[cudart, cudnn])
    build_so(sp / f"{capi}/onnxruntime_pybind11_state{EXT}")
    make_dist(
        sp, "onnxruntime-gpu", version,
        files={"onnxruntime/__init__.py": "from onnxruntime.capi import onnxruntime_pybind11_state\n",
               f"{capi}/__init__.py": "", f"{capi}/build_and_package_info.py": f"cuda_version = '{cuda}.0'\n"},
        existing=[f"{capi}/libonnxruntime_providers_cuda.so", f"{capi}/libonnxruntime_providers_tensorrt.so",
                  f"{capi}/onnxruntime_pybind11_state{EXT}"],
    )
    return sp


def _cudnn_wheel(sp: Path, name: str) -> None:
    build_so(sp / "nvidia/cudnn/lib/libcudnn.so.9", soname="libcudnn.so.9")
    make_dist(sp, name, "9.20.0.48", files={"nvidia/cudnn/__init__.py": ""}, existing=["nvidia/cudnn/lib/libcudnn.so.9"])


def _needs(tmp_path: Path, sp: Path, base: str = BASE) -> list[Need]:
    service = tmp_path / "detector"
    service.mkdir(exist_ok=True)
    (service / "main.py").write_text("import onnxruntime\n")
    (report,) = run_scan(ScanOptions((service,), (sp,), base_image=base)).services
    return [n for n in report.needs if n.name.startswith(("libcudnn", "libcufft"))]


@pytest.fixture()
def ort13(tmp_path: Path) -> Path:
    """1.31.1 as on PyPI: built for CUDA 13, cuDNN and cuFFT only dlopened by the CUDA provider."""
    return _ort(tmp_path / "env", "1.31.1", "13", ("libcublas.so.13", "libcudart.so.13"))


def test_the_stand_in_holds_what_the_real_provider_holds(ort13: Path) -> None:
    """Only fragments: no full name a string reader could take for a dlopen."""
    data = (ort13 / "onnxruntime/capi/libonnxruntime_providers_cuda.so").read_bytes()
    cited = {c.text for c in RULE.cites if c.file == "onnxruntime/capi/libonnxruntime_providers_cuda.so"}
    assert set(FRAGMENTS) <= cited
    assert all(text.encode() in data for text in FRAGMENTS)
    assert b"libcudnn.so.9" not in data and b"libcufft.so.12" not in data


def test_without_cudnn_the_need_names_the_cuda_13_package_and_what_would_provide_it(tmp_path: Path, ort13: Path) -> None:
    needs = _needs(tmp_path, ort13)
    assert [(n.name, n.status.value, n.package, n.tier.value) for n in needs] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-13", "optional"),
        ("libcufft.so.12", "unmapped", None, "optional"),
    ]
    # The TensorRT provider's DT_NEEDED and the CUDA provider's dlopen are one need: the shorter
    # evidence is kept, and says the other ways to have it.
    cudnn = needs[0]
    assert [str(step) for step in cudnn.chain[-4:]] == [
        "onnxruntime/capi/libonnxruntime_providers_tensorrt.so",
        "libcudnn.so.9",
        "libcudnn9-cuda-13 (ubuntu-22.04)",
        "not installed: nvidia-cudnn-cu13 (it ships libcudnn.so.9), or a cuDNN base image for CUDA 13 "
        "(nvidia/cuda:13.*-cudnn-runtime-ubuntu22.04)",
    ]


def test_with_nvidia_cudnn_cu13_installed_the_wheel_provides_it(tmp_path: Path, ort13: Path) -> None:
    _cudnn_wheel(ort13, "nvidia-cudnn-cu13")
    needs = _needs(tmp_path, ort13)
    assert [(n.name, n.status.value, n.package, n.found_at, n.rule) for n in needs] == [
        ("libcufft.so.12", "unmapped", None, None, None),
        # The TensorRT provider links cuDNN with no search path into the wheel; but the copy the
        # rule has loaded by path is in the process first, and glibc takes it for the link too.
        # The package stays named, so that no plan prunes it.
        ("libcudnn.so.9", "loaded", "libcudnn9-cuda-13", "nvidia/cudnn/lib/libcudnn.so.9", "already loaded by nvidia-cudnn-cu13"),
        ("libcudnn.so.9", "other-wheel", None, "nvidia/cudnn/lib/libcudnn.so.9", None),
    ]
    assert [str(step) for step in needs[1].chain[-3:]] == [
        "onnxruntime/capi/libonnxruntime_providers_tensorrt.so",
        "libcudnn.so.9",
        "rules/python/packages.toml [onnxruntime-gpu]: nvidia-cudnn-cu13 9.20.0.48's nvidia/cudnn/lib/libcudnn.so.9 "
        "is loaded by path for the rule's need of libcudnn.so.9",
    ]
    assert not needs[1].status.fails
    assert [str(step) for step in needs[2].chain[-3:]] == [
        "rules/python/packages.toml [onnxruntime-gpu]: " + RULE.source,
        "libcudnn.so.9",
        "nvidia/cudnn/lib/libcudnn.so.9 (shipped by nvidia-cudnn-cu13 9.20.0.48)",
    ]


def test_cudnn_for_cuda_12_does_not_provide_it_for_a_cuda_13_build(tmp_path: Path, ort13: Path) -> None:
    """torch for CUDA 12 brings nvidia-cudnn-cu12: cuDNN 9 too, but for the other CUDA major."""
    _cudnn_wheel(ort13, "nvidia-cudnn-cu12")
    needs = _needs(tmp_path, ort13)
    assert [(n.name, n.status.value, n.package) for n in needs] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-13"),
        ("libcufft.so.12", "unmapped", None),
    ]


def test_a_cuda_12_build_links_cudnn_and_needs_the_cuda_12_package(tmp_path: Path) -> None:
    """1.26.0 as on PyPI: built for CUDA 12.8, cuDNN and cuFFT are DT_NEEDED of its CUDA provider;
    no rule applies and the package follows the image's CUDA major."""
    sp = _ort(tmp_path / "env", "1.26.0", "12", ("libcudnn.so.9", "libcufft.so.11", "libcudart.so.12"))
    needs = _needs(tmp_path, sp)
    assert [(n.name, n.status.value, n.package, n.tier.value) for n in needs] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-12", "optional"),
        ("libcufft.so.11", "base-image", "libcufft-12-1", "optional"),
    ]


def _cufft_wheel(sp: Path) -> None:
    """NVIDIA's CUDA 13 cuFFT wheel as torch for CUDA 13 brings it: no -cu13 suffix, below nvidia/cu13/."""
    build_so(sp / "nvidia/cu13/lib/libcufft.so.12", soname="libcufft.so.12")
    make_dist(sp, "nvidia-cufft", "12.0.0.15", existing=["nvidia/cu13/lib/libcufft.so.12"])


def test_the_rule_reads_the_builds_cuda_major_where_the_real_wheel_writes_it() -> None:
    """The pattern finds the major in the text cited from 1.31.1's build_and_package_info.py."""
    assert RULE.cuda_from is not None
    cited = [c.text for c in RULE.cites if c.file == RULE.cuda_from.file]
    assert cited == ["cuda_version = '13.0'"]
    assert [RULE.cuda_from.major(text) for text in (*cited, "cuda_version = '12.8'\n", "cuda_version = ''\n")] == ["13", "12", None]


def test_a_cuda_12_build_of_the_same_release_needs_cuda_12s_libraries(tmp_path: Path) -> None:
    """1.31.1 built for CUDA 12 (its build_and_package_info.py says '12.0'): CUDA 12's cuFFT soname,
    cuDNN for CUDA 12, and the -cu12 wheels as the way out; the version range alone said CUDA 13."""
    sp = _ort(tmp_path / "env", "1.31.1", "12", ("libcublas.so.12", "libcudart.so.12"))
    needs = _needs(tmp_path, sp)
    assert [(n.name, n.status.value, n.package, n.tier.value) for n in needs] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-12", "optional"),
        ("libcufft.so.11", "base-image", "libcufft-12-1", "optional"),
    ]
    assert str(needs[0].chain[-1]) == (
        "not installed: nvidia-cudnn-cu12 (it ships libcudnn.so.9), or a cuDNN base image for CUDA 12 "
        "(nvidia/cuda:12.*-cudnn-runtime-ubuntu22.04)"
    )
    assert str(needs[1].chain[-3]) == (
        "rules/python/packages.toml [onnxruntime-gpu]: " + RULE.source
        + "; this build is for CUDA 12, as its onnxruntime/capi/build_and_package_info.py says"
    )


def test_a_cuda_12_build_takes_cudnn_from_nvidia_cudnn_cu12_not_cu13(tmp_path: Path) -> None:
    sp = _ort(tmp_path / "env", "1.31.1", "12", ("libcublas.so.12", "libcudart.so.12"))
    _cudnn_wheel(sp, "nvidia-cudnn-cu13")
    assert [(n.name, n.status.value, n.package) for n in _needs(tmp_path, sp)] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-12"),
        ("libcufft.so.11", "base-image", "libcufft-12-1"),
    ]
    (tmp_path / "detector").rename(tmp_path / "detector-13")
    sp12 = _ort(tmp_path / "env12", "1.31.1", "12", ("libcublas.so.12", "libcudart.so.12"))
    _cudnn_wheel(sp12, "nvidia-cudnn-cu12")
    assert [(n.name, n.status.value, n.found_at) for n in _needs(tmp_path, sp12) if n.status.value == "other-wheel"] == [
        ("libcudnn.so.9", "other-wheel", "nvidia/cudnn/lib/libcudnn.so.9"),
    ]


def test_cufft_of_a_cuda_13_build_on_a_cuda_12_image_names_the_wheel_and_a_cuda_13_image(tmp_path: Path, ort13: Path) -> None:
    """libcufft.so.12 is CUDA 13's alone: no package of the 12.1 image's CUDA ships it."""
    needs = _needs(tmp_path, ort13)
    cufft = needs[1]
    assert (cufft.name, cufft.status.value, cufft.package) == ("libcufft.so.12", "unmapped", None)
    assert str(cufft.chain[-1]) == (
        "not installed: nvidia-cufft (it ships libcufft.so.12), or a CUDA 13 runtime base image "
        "(nvidia/cuda:13.*-runtime-ubuntu22.04)"
    )


def test_cufft_of_a_cuda_13_build_comes_from_nvidia_cufft_when_installed(tmp_path: Path, ort13: Path) -> None:
    _cufft_wheel(ort13)
    cufft = [n for n in _needs(tmp_path, ort13) if n.name == "libcufft.so.12"]
    assert [(n.status.value, n.package, n.found_at) for n in cufft] == [("other-wheel", None, "nvidia/cu13/lib/libcufft.so.12")]
    assert str(cufft[0].chain[-1]) == "nvidia/cu13/lib/libcufft.so.12 (shipped by nvidia-cufft 12.0.0.15)"


def test_cufft_of_a_cuda_13_build_on_a_cuda_13_image_is_its_cuda_package(tmp_path: Path, ort13: Path) -> None:
    needs = _needs(tmp_path, ort13, "nvidia/cuda:13.0.0-base-ubuntu24.04")
    assert [(n.name, n.status.value, n.package) for n in needs] == [
        ("libcudnn.so.9", "missing", "libcudnn9-cuda-13"),
        ("libcufft.so.12", "missing", "libcufft-13-0"),
    ]
