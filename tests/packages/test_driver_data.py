"""rules/driver/nvidia.toml, validated when loaded, and NVIDIA_DRIVER_CAPABILITIES read as the toolkit reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.evidence import NeedKind
from depaudit.packages.driver import DriverDataError, driver_path, load_driver_files
from depaudit.packages.mounts import CapabilitySource, driver_mounts
from depaudit.packages.rules import rules_dir

GOOD = '''\
source = "libnvidia-container src/nvc_info.c"
default = ["utility", "compute"]
unlisted = "compute"
[capabilities]
utility = ["utility"]
compute = ["compute"]
video = ["video", "compute"]
[libraries]
"libcuda.so" = "compute"
[programs]
"nvidia-smi" = "utility"
'''


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "nvidia.toml"
    path.write_text(text)
    return load_driver_files(path)


def test_the_shipped_data_names_each_file_with_its_capability() -> None:
    files = load_driver_files(driver_path(rules_dir()))
    assert "NVIDIA/libnvidia-container src/nvc_info.c" in files.source
    assert files.default == ("utility", "compute")
    assert set(files.mounts) == {"utility", "compute", "video", "graphics", "display", "ngx", "compat32"}
    cases = {
        "libcuda.so.1": "compute", "libcuda.so.550.54.15": "compute", "libcudadebugger.so.1": "compute",
        "libnvidia-ml.so.1": "utility", "libnvidia-ptxjitcompiler.so.1": "compute", "libnvidia-nvvm.so.4": "compute",
        "libnvcuvid.so.1": "video", "libnvidia-encode.so.1": "video", "libnvidia-opticalflow.so.1": "video",
        "libGLX_nvidia.so.0": "graphics", "libEGL_nvidia.so.0": "graphics", "libnvoptix.so.1": "graphics",
        "libnvidia-ngx.so.1": "ngx", "libnvidia-pkcs11-openssl3.so.550.54.15": "compute",
    }
    assert {name: (files.match(NeedKind.SONAME, name) or ("", ""))[1] for name in cases} == cases
    assert files.match(NeedKind.SONAME, "libGL.so.1") is None  # libglvnd's in an image: an apt package
    assert files.match(NeedKind.SONAME, "libcudart.so.12") is None
    programs = ["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"]
    assert [files.match(NeedKind.PROGRAM, p) for p in programs] == [
        ("nvidia-smi", "utility"), ("nvidia-debugdump", "utility"), ("nvidia-persistenced", "utility"),
        ("nvidia-cuda-mps-control", "compute"), ("nvidia-cuda-mps-server", "compute"),
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('"libcuda.so" = "compute"', '"libcuda.so" = "computer"'),
         r"libraries\.'libcuda\.so': unknown capability 'computer' \(known: compute, utility, video\)"),
        (lambda t: t.replace('"nvidia-smi" = "utility"', '"nvidia-smi" = "graphics"'), r"programs\.'nvidia-smi': unknown capability 'graphics'"),
        (lambda t: t.replace('unlisted = "compute"', 'unlisted = "all"'), r"unlisted: unknown capability 'all'"),
        (lambda t: t.replace('video = ["video", "compute"]', 'video = ["video", "encode"]'), r"capabilities\.video: unknown capability 'encode'"),
        (lambda t: t.replace('video = ["video", "compute"]', 'video = ["compute"]'), r"capabilities\.video must be a list .* that holds 'video'"),
        (lambda t: t.replace('source = "libnvidia-container src/nvc_info.c"\n', ""), r"missing key\(s\) source"),
        (lambda t: t.replace('"libnvidia-container src/nvc_info.c"', '"  "'), r"'source' must say where the lists were read"),
        (lambda t: t + "[more]\nx = 1\n", r"unknown key 'more'"),
        (lambda t: t.replace('"libcuda.so" =', '"libcuda" ='), r"libraries\.'libcuda': a library name prefix ends with \.so"),
        (lambda t: t.replace('default = ["utility", "compute"]', 'default = "utility"'), r"'default' must be a list"),
    ],
)
def test_bad_data_is_an_error_naming_the_file_and_the_key(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    assert _load(tmp_path, GOOD).libraries == {"libcuda.so": "compute"}
    with pytest.raises(DriverDataError, match=rf"^driver/nvidia\.toml: {message}"):
        _load(tmp_path, edit(GOOD))


SOURCE = CapabilitySource("docker/f/Dockerfile:4", line="docker/f/Dockerfile:4")


@pytest.mark.parametrize(
    ("env", "asked", "mounted"),
    [
        ({"NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}, ("compute", "utility"), {"compute", "utility"}),
        ({"NVIDIA_DRIVER_CAPABILITIES": " video , utility,video"}, ("video", "utility"), {"video", "compute", "utility"}),
        ({"NVIDIA_DRIVER_CAPABILITIES": "display"}, ("display",), {"display", "graphics"}),
        ({"NVIDIA_DRIVER_CAPABILITIES": "all"}, ("all",), {"utility", "compute", "video", "graphics", "display", "ngx", "compat32"}),
        ({"NVIDIA_DRIVER_CAPABILITIES": ""}, ("utility", "compute"), {"utility", "compute"}),  # empty: the default
        ({}, ("utility", "compute"), {"utility", "compute"}),  # unset: the default
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, ("utility", "compute"), {"utility", "compute"}),
        # unset on a legacy image (CUDA_VERSION, no NVIDIA_REQUIRE_CUDA): every capability
        ({"CUDA_VERSION": "10.0"}, ("all",), {"utility", "compute", "video", "graphics", "display", "ngx", "compat32"}),
        ({"CUDA_VERSION": "12.1.1", "NVIDIA_REQUIRE_CUDA": "cuda>=12.1"}, ("utility", "compute"), {"utility", "compute"}),
        ({"CUDA_VERSION": "10.0", "NVIDIA_DRIVER_CAPABILITIES": "compute"}, ("compute",), {"compute"}),
    ],
)
def test_capabilities_as_the_toolkit_reads_them(env: dict[str, str], asked: tuple[str, ...], mounted: set[str]) -> None:
    mounts = driver_mounts(env, load_driver_files(driver_path(rules_dir())), SOURCE)
    assert (mounts.asked, mounts.mounted) == (asked, frozenset(mounted))


def test_the_fix_changes_the_line_that_sets_it_or_adds_one_to_the_family_dockerfile() -> None:
    files = load_driver_files(driver_path(rules_dir()))
    set_here = driver_mounts({"NVIDIA_DRIVER_CAPABILITIES": "compute"}, files, SOURCE)
    assert set_here.missing("utility") == (
        "the NVIDIA driver ships it, but the image's NVIDIA_DRIVER_CAPABILITIES (compute, set by docker/f/Dockerfile:4) "
        "does not ask for utility: change docker/f/Dockerfile:4 to ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility"
    )
    unset = driver_mounts({}, files, CapabilitySource("nothing", dockerfile="docker/f/Dockerfile"))
    assert unset.missing("video") == (
        "the NVIDIA driver ships it, but the image's NVIDIA_DRIVER_CAPABILITIES (unset: the toolkit's default "
        "utility,compute) does not ask for video: add ENV NVIDIA_DRIVER_CAPABILITIES=utility,compute,video to docker/f/Dockerfile"
    )
