"""The CUDA the wheels load against the base image's: DA220 (another major), DA221 (the base's
unused CUDA libraries), DA222 (the base's copies of what the wheels ship and load first).

Stand-ins built with gcc: NVIDIA's wheels are hundreds of MB each. The layouts are the real
ones (checked against nvidia-cuda-runtime 13.0.96 and nvidia-cublas-cu12 12.1.3.1): CUDA 13
wheels put their libraries in nvidia/cu13/lib, CUDA 12 wheels in nvidia/<library>/lib."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from depaudit.emit.sarif import render_sarif
from depaudit.findings import Finding, FindingKind
from depaudit.packages.cuda import load_cuda_rules
from depaudit.packages.profiles import load_profile
from depaudit.packages.rules import RulesError
from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, have_gcc, make_dist

EXT = ".cpython-311-x86_64-linux-gnu.so"
BASE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
CUDA_KINDS = (FindingKind.CUDA_MAJOR_MISMATCH, FindingKind.UNUSED_BASE_CUDA, FindingKind.DUPLICATE_CUDA)
needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


def _wheels(root: Path, wheels: dict[str, tuple[str, list[str]]], rpath: str) -> Path:
    """`torchlike`, whose extension module links every library of `wheels` (dist → (folder,
    sonames)) through its RPATH, as torch's libtorch_cuda does; and libcuda, the driver's."""
    sp = root / "site-packages"
    shipped = []
    for dist, (folder, sonames) in wheels.items():
        for soname in sonames:
            shipped.append(build_so(sp / folder / soname, soname=soname))
        make_dist(sp, dist, files={}, existing=[f"{folder}/{soname}" for soname in sonames])
    libcuda = build_so(root / "stubs/libcuda.so.1", soname="libcuda.so.1")
    build_so(sp / f"torchlike/_C{EXT}", needed=[*shipped, libcuda], rpath=rpath)
    make_dist(sp, "torchlike", files={"torchlike/__init__.py": "from torchlike import _C\n"}, existing=[f"torchlike/_C{EXT}"])
    return sp


def _fleet(root: Path) -> Path:
    """A root family FROM the CUDA image, a family on it, and one service on that."""
    files = {
        "docker/base-gpu/Dockerfile": f"# the GPU base\nFROM {BASE}\n",
        "docker/family-torch/Dockerfile": "FROM base-gpu\n",
        "services/llm/Dockerfile": "FROM family-torch\n",
        "services/llm/main.py": "import torchlike\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "services"


def _cuda(findings: tuple[Finding, ...]) -> list[Finding]:
    return [finding for finding in findings if finding.kind in CUDA_KINDS]


@needs_gcc
def test_cuda_13_wheels_on_a_cuda_12_base(tmp_path: Path) -> None:
    sp = _wheels(
        tmp_path / "env",
        {
            "nvidia-cuda-runtime-cu13": ("nvidia/cu13/lib", ["libcudart.so.13"]),
            # cuFFT's soname is .so.12 in CUDA 13: only the wheel's name tells its major.
            "nvidia-cufft-cu13": ("nvidia/cu13/lib", ["libcufft.so.12"]),
        },
        "$ORIGIN/../nvidia/cu13/lib",
    )
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,)))
    mismatch, unused = _cuda(report.findings)
    assert (mismatch.kind, mismatch.path, mismatch.line) == (FindingKind.CUDA_MAJOR_MISMATCH, "docker/base-gpu/Dockerfile", 2)
    assert mismatch.message == (
        f"the wheels load CUDA 13, the base image {BASE} has CUDA 12.1.1: the host driver must run CUDA 13 "
        "(Linux driver >= 580; CUDA 12 needs Linux driver >= 525.60.13); CUDA 13 comes from "
        "nvidia-cuda-runtime-cu13 (libcudart.so.13), nvidia-cufft-cu13 (libcufft.so.12); "
        "e.g. llm → llm/main.py:1 import torchlike → torchlike 1.0 → torchlike/__init__.py:1 from torchlike import _C → "
        f"torchlike/_C{EXT} → libcudart.so.13 → "
        "nvidia/cu13/lib/libcudart.so.13"
    )
    profile = load_profile(BASE)
    assert (unused.kind, unused.path, unused.line) == (FindingKind.UNUSED_BASE_CUDA, "docker/base-gpu/Dockerfile", 2)
    # Every CUDA library of the profile, none loaded: the plain distro image would serve.
    assert unused.message == (
        f"no service built on base-gpu loads these CUDA 12.1.1 libraries of {BASE}: "
        f"{', '.join(sorted(profile.sonames))} (1,696,510 KiB, estimated from NVIDIA's CUDA 12.1 wheels; "
        "no size known for libOpenCL.so.1, libcufile.so.0, libcufile_rdma.so.1, libnccl.so.2); "
        "the wheels bring their own CUDA: ubuntu:22.04 would serve (with ENV NVIDIA_VISIBLE_DEVICES and "
        "NVIDIA_DRIVER_CAPABILITIES, which the container runtime reads)"
    )
    assert not report.failing  # a warning and a note: the driver is the host's, which depaudit cannot see
    sarif = json.loads(render_sarif(report, root=tmp_path / "fleet"))
    located = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
               for r in sarif["runs"][0]["results"] if r["ruleId"] in ("DA220", "DA221")}
    assert located == {("DA220", "docker/base-gpu/Dockerfile", 2), ("DA221", "docker/base-gpu/Dockerfile", 2)}


@needs_gcc
def test_cuda_13_wheels_beside_the_base_cudart_suggest_the_base_variant(tmp_path: Path) -> None:
    """A second extension loads the image's own libcudart.so.12: only the -base- variant can go."""
    sp = _wheels(tmp_path / "env", {"nvidia-cuda-runtime-cu13": ("nvidia/cu13/lib", ["libcudart.so.13"])}, "$ORIGIN/../nvidia/cu13/lib")
    build_so(sp / f"oldkernels/_ops{EXT}", needed=[build_so(tmp_path / "stubs/libcudart.so.12", soname="libcudart.so.12")])
    make_dist(sp, "oldkernels", existing=[f"oldkernels/_ops{EXT}"])
    services = _fleet(tmp_path / "fleet")
    (services / "llm/main.py").write_text("import torchlike\nimport oldkernels\n")
    report = run_scan(ScanOptions((services,), (sp,)))
    mismatch, unused = _cuda(report.findings)
    assert mismatch.kind is FindingKind.CUDA_MAJOR_MISMATCH
    others = sorted(set(load_profile(BASE).sonames) - {"libcudart.so.12"})
    assert unused.message == (
        f"no service built on base-gpu loads these CUDA 12.1.1 libraries of {BASE}: {', '.join(others)} "
        "(1,695,846 KiB, estimated from NVIDIA's CUDA 12.1 wheels; no size known for libOpenCL.so.1, "
        "libcufile.so.0, libcufile_rdma.so.1, libnccl.so.2); only libcudart.so.12 is loaded from it: "
        "nvidia/cuda:12.1.1-base-ubuntu22.04 would serve"
    )


@needs_gcc
def test_cuda_12_wheels_on_a_cuda_12_base_duplicate_its_libraries(tmp_path: Path) -> None:
    sp = _wheels(
        tmp_path / "env",
        {
            "nvidia-cuda-runtime-cu12": ("nvidia/cuda_runtime/lib", ["libcudart.so.12"]),
            "nvidia-cublas-cu12": ("nvidia/cublas/lib", ["libcublas.so.12", "libcublasLt.so.12"]),
            "nvidia-cudnn-cu12": ("nvidia/cudnn/lib", ["libcudnn.so.9"]),  # not in the runtime image
        },
        "$ORIGIN/../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cublas/lib:$ORIGIN/../nvidia/cudnn/lib",
    )
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,)))
    assert _cuda(report.findings) == [
        Finding(
            FindingKind.DUPLICATE_CUDA,
            "docker/base-gpu/Dockerfile",
            2,
            f"the wheels ship CUDA 12 libraries that {BASE} also has, and theirs are loaded first (RPATH): "
            "libcublas.so.12 (nvidia-cublas-cu12), libcublasLt.so.12 (nvidia-cublas-cu12), "
            "libcudart.so.12 (nvidia-cuda-runtime-cu12); the image's copies are dead weight "
            "(608,638 KiB, estimated from NVIDIA's CUDA 12.1 wheels)",
        )
    ]


@needs_gcc
def test_no_cuda_finding_without_a_known_cuda_version(tmp_path: Path) -> None:
    """A family FROM an image with no CUDA_VERSION (no profile, no ENV): nothing to compare."""
    sp = _wheels(tmp_path / "env", {"nvidia-cuda-runtime-cu13": ("nvidia/cu13/lib", ["libcudart.so.13"])}, "$ORIGIN/../nvidia/cu13/lib")
    services = _fleet(tmp_path / "fleet")
    (tmp_path / "fleet/docker/base-gpu/Dockerfile").write_text("FROM python:3.11-slim\n")
    assert _cuda(run_scan(ScanOptions((services,), (sp,))).findings) == []
    # The same image, told its CUDA_VERSION: the mismatch is back, without a profile's libraries.
    report = run_scan(ScanOptions((services,), (sp,), env={"CUDA_VERSION": "12.4.1"}))
    assert [(f.kind, f.message.split(":")[0]) for f in _cuda(report.findings)] == [
        (FindingKind.CUDA_MAJOR_MISMATCH, "the wheels load CUDA 13, the base image has CUDA 12.4.1")
    ]


def test_the_cuda_rules_load_with_their_sources() -> None:
    rules = load_cuda_rules()
    assert dict(rules.drivers) == {11: "450.80.02", 12: "525.60.13", 13: "580"}
    assert [rules.soname_major(s) for s in ("libcudart.so.13", "libcublasLt.so.12", "libnvrtc.so.11.2", "libcufft.so.11", "libcurand.so.10")] == [13, 12, 11, None, None]
    assert rules.base_sonames(12) == {"libcudart.so.12"}
    assert rules.kib("12.1.1", "libcublasLt.so.12") == 503018 and rules.kib("12.4.1", "libcublasLt.so.12") is None
    assert all("docs.nvidia.com" in source for source in rules.sources[:1])


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda t: t.replace('"13" = "580"', '"13" = 580'), "drivers.minimum: '13' = 580 is not CUDA major = driver version"),
        (lambda t: t.replace('"13" = "580"', 'thirteen = "580"'), "drivers.minimum: 'thirteen' = '580' is not CUDA major = driver version"),
        (lambda t: t.replace("major_in_soname =", "majors ="), "sonames: unknown key 'majors'"),
        (lambda t: t.replace('"libcudart.so.12" = 664', '"libcudart.so.12" = "664"'), "sizes.'12.1': 'libcudart.so.12' must be a whole number of KiB"),
        (lambda t: t.replace('[sizes."12.1"]\nsource = """', '[sizes."12.1"]\nnote = """'), "sizes.'12.1' has no source"),
        (lambda t: t + "\n[extra]\nsource = 'x'\n", "unknown key 'extra'"),
    ],
)
def test_the_cuda_rules_are_validated_when_loaded(tmp_path: Path, edit, error: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "rules/cuda/cuda.toml").read_text()
    changed = edit(text)
    assert changed != text
    path = tmp_path / "cuda.toml"
    path.write_text(changed)
    with pytest.raises(RulesError) as raised:
        load_cuda_rules(path)
    assert str(raised.value) == f"cuda/cuda.toml: {error}"


@needs_gcc
def test_a_soname_loaded_from_a_wheel_is_not_the_bases_in_use(tmp_path: Path) -> None:
    """As in nvidia-cufile: its libcufile_rdma.so.1 needs libcufile.so.0 with no RPATH, so its own
    walk finds the base's; in the process torchlike has loaded the wheel's libcufile.so.0 first."""
    root = tmp_path / "env"
    sp = root / "site-packages"
    cufile = build_so(sp / "nvidia/cu13/lib/libcufile.so.0", soname="libcufile.so.0")
    build_so(sp / "nvidia/cu13/lib/libcufile_rdma.so.1", soname="libcufile_rdma.so.1", needed=[cufile])
    make_dist(sp, "nvidia-cufile-cu13", existing=["nvidia/cu13/lib/libcufile.so.0", "nvidia/cu13/lib/libcufile_rdma.so.1"])
    cudart = build_so(sp / "nvidia/cu13/lib/libcudart.so.13", soname="libcudart.so.13")
    make_dist(sp, "nvidia-cuda-runtime-cu13", existing=["nvidia/cu13/lib/libcudart.so.13"])
    build_so(sp / f"torchlike/_C{EXT}", needed=[cudart, cufile], rpath="$ORIGIN/../nvidia/cu13/lib")
    make_dist(sp, "torchlike", files={"torchlike/__init__.py": "from torchlike import _C\n"}, existing=[f"torchlike/_C{EXT}"],
              requires=["nvidia-cufile-cu13", "nvidia-cuda-runtime-cu13"])
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,)))
    needs = sorted((n.name, n.status.value) for n in report.services[0].needs if n.name == "libcufile.so.0")
    assert needs == [("libcufile.so.0", "base-image"), ("libcufile.so.0", "other-wheel")]
    unused = next(f for f in report.findings if f.kind is FindingKind.UNUSED_BASE_CUDA)
    assert "libcufile.so.0" in unused.message.split(" (")[0]
    assert unused.message.endswith("ubuntu:22.04 would serve (with ENV NVIDIA_VISIBLE_DEVICES and NVIDIA_DRIVER_CAPABILITIES, which the container runtime reads)")


def test_an_unsuffixed_cuda_13_wheel_is_known_by_its_install_folder(tmp_path: Path) -> None:
    """torch 2.14's nvidia-cufft has no -cu13 suffix and libcufft.so.12 names no CUDA major; it
    installs below nvidia/cu13/, which does."""
    sp = tmp_path / "env" / "site-packages"
    cufft = build_so(sp / "nvidia/cu13/lib/libcufft.so.12", soname="libcufft.so.12")
    make_dist(sp, "nvidia-cufft", existing=["nvidia/cu13/lib/libcufft.so.12"])
    build_so(sp / f"torchlike/_C{EXT}", needed=[cufft], rpath="$ORIGIN/../nvidia/cu13/lib")
    make_dist(sp, "torchlike", files={"torchlike/__init__.py": "from torchlike import _C\n"}, existing=[f"torchlike/_C{EXT}"],
              requires=["nvidia-cufft"])
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,)))
    (mismatch,) = [f for f in report.findings if f.kind is FindingKind.CUDA_MAJOR_MISMATCH]
    assert "CUDA 13" in mismatch.message and "libcufft.so.12" in mismatch.message


# The image's CUDA, as NVIDIA's apt packages lay it out: (package, image path of the real file,
# its soname, size in KiB). The sizes are padded to round figures (an ELF file read by its
# headers does not mind trailing bytes), so that a figure asserted below is the same on any gcc.
CUDA_LIB = "/usr/local/cuda-12.1/targets/x86_64-linux/lib"
IMAGE_CUDA = [
    ("cuda-cudart-12-1", f"{CUDA_LIB}/libcudart.so.12.1.105", "libcudart.so.12", 100),
    ("libcublas-12-1", f"{CUDA_LIB}/libcublas.so.12.1.3.1", "libcublas.so.12", 300),
    ("libcublas-12-1", f"{CUDA_LIB}/libcublasLt.so.12.1.3.1", "libcublasLt.so.12", 500),
    ("libcufft-12-1", f"{CUDA_LIB}/libcufft.so.11.0.2.54", "libcufft.so.11", 200),
    ("libnccl2", "/usr/lib/x86_64-linux-gnu/libnccl.so.2.17.1", "libnccl.so.2", 150),
    (None, f"{CUDA_LIB}/libnvrtc.so.12.1.105", "libnvrtc.so.12", 50),  # copied in: no package owns it, no link
    ("libfoo1", "/usr/lib/x86_64-linux-gnu/libfoo.so.1.0", "libfoo.so.1", 70),  # not CUDA's
    # The driver's forward-compatibility copy, not a CUDA library: never listed.
    ("cuda-compat-12-1", "/usr/local/cuda-12.1/compat/libcuda.so.530.30.02", "libcuda.so.1", 80),
]


def _cuda_rootfs(root: Path) -> Path:
    """An unpacked CUDA 12.1 image: its dpkg status and file lists, the libraries (gcc-built
    stand-ins with CUDA's sonames) with their soname links, /usr/local/cuda → cuda-12.1, and
    libcudnn8 installed with its file list gone (only its Installed-Size tells its size)."""
    rootfs = root / "rootfs"
    (rootfs / "usr/lib").mkdir(parents=True)
    (rootfs / "lib").symlink_to("usr/lib")  # usrmerge
    (rootfs / "etc/ld.so.conf.d").mkdir(parents=True)
    (rootfs / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    (rootfs / "etc/ld.so.conf.d/988_cuda-12.conf").write_text(f"{CUDA_LIB}\n")
    lists: dict[str, list[str]] = {}
    for package, path, soname, kib in IMAGE_CUDA:
        real = rootfs / path.lstrip("/")
        build_so(real, soname=soname)
        with real.open("r+b") as handle:
            handle.truncate(kib * 1024)
        if package is None:
            continue  # copied in without its soname link: its DT_SONAME names it
        (real.parent / soname).symlink_to(real.name)
        lists.setdefault(package, []).extend([path, f"{path.rsplit('/', 1)[0]}/{soname}"])
    (rootfs / "usr/local/cuda-12.1/lib64").symlink_to("targets/x86_64-linux/lib")
    (rootfs / "usr/local/cuda").symlink_to("/usr/local/cuda-12.1")
    dpkg = rootfs / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    status = [f"Package: {p}\nStatus: install ok installed\nVersion: 1\nInstalled-Size: 9\n" for p in lists]
    status.append("Package: libcudnn8\nStatus: install ok installed\nVersion: 8.9.0.131-1+cuda12.1\nInstalled-Size: 1234567\n")
    (dpkg / "status").write_text("\n".join(status))
    for package, paths in lists.items():
        (dpkg / f"info/{package}:amd64.list").write_text("/.\n" + "".join(f"{p}\n" for p in paths))
    return rootfs


def _docker_save(rootfs: Path, env: list[str], path: Path) -> Path:
    """A `docker save` tarball of `rootfs` in one layer, its config's Env `env`."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for entry in sorted(rootfs.rglob("*")):
            tar.add(entry, arcname=entry.relative_to(rootfs).as_posix(), recursive=False)
    members = {
        "manifest.json": json.dumps([{"Config": "config.json", "Layers": ["l1/layer.tar"]}]).encode(),
        "config.json": json.dumps({"config": {"Env": env}}).encode(),
        "l1/layer.tar": layer.getvalue(),
    }
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


IMAGE_SONAMES = "libcublas.so.12, libcublasLt.so.12, libcudart.so.12, libcufft.so.11, libnccl.so.2, libnvrtc.so.12"
DISTRO_SERVES = (
    "the wheels bring their own CUDA: ubuntu:22.04 would serve (with ENV NVIDIA_VISIBLE_DEVICES and "
    "NVIDIA_DRIVER_CAPABILITIES, which the container runtime reads)"
)


@needs_gcc
@pytest.mark.parametrize("given", ["rootfs", "image"])
def test_an_images_unused_cuda_is_what_it_holds_sized_as_installed(tmp_path: Path, given: str) -> None:
    """With the image itself, DA221 lists the CUDA libraries it really holds (its CUDA packages'
    and a library no package owns; not libfoo, nor cuda-compat's libcuda), sized by their files; CUDA_VERSION is the
    image config's (a rootfs has none: --env gives it)."""
    sp = _wheels(tmp_path / "env", {"nvidia-cuda-runtime-cu13": ("nvidia/cu13/lib", ["libcudart.so.13"])}, "$ORIGIN/../nvidia/cu13/lib")
    rootfs = _cuda_rootfs(tmp_path / "base")
    if given == "rootfs":
        options = ScanOptions((_fleet(tmp_path / "fleet"),), (sp,), rootfs=rootfs, env={"CUDA_VERSION": "12.1.1"})
        label = str(rootfs)
    else:
        image = _docker_save(rootfs, ["PATH=/usr/bin", "CUDA_VERSION=12.1.1"], tmp_path / "cuda.tar")
        options = ScanOptions((_fleet(tmp_path / "fleet"),), (sp,), image=image)
        label = str(image)
    report = run_scan(options)
    mismatch, unused = _cuda(report.findings)
    assert mismatch.message.startswith(f"the wheels load CUDA 13, the base image {label} has CUDA 12.1.1: ")
    assert (unused.kind, unused.path, unused.line) == (FindingKind.UNUSED_BASE_CUDA, "docker/base-gpu/Dockerfile", 2)
    assert unused.message == (
        f"no service built on base-gpu loads these CUDA 12.1.1 libraries of {label}: {IMAGE_SONAMES} "
        f"(1,300 KiB as the image's files); {DISTRO_SERVES}"
    )


@needs_gcc
def test_a_cuda_package_without_its_file_list_is_sized_by_installed_size(tmp_path: Path) -> None:
    """libcudnn8 is installed but its file list is gone: its sonames are the profile's, and its
    size dpkg's Installed-Size, counted because none of its libraries is loaded."""
    sp = _wheels(tmp_path / "env", {"nvidia-cuda-runtime-cu13": ("nvidia/cu13/lib", ["libcudart.so.13"])}, "$ORIGIN/../nvidia/cu13/lib")
    rootfs = _cuda_rootfs(tmp_path / "base")
    cudnn = "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,), rootfs=rootfs, base_image=cudnn, env={"CUDA_VERSION": "12.1.1"}))
    _, unused = _cuda(report.findings)
    cudnn_sonames = sorted(s for s, package in load_profile(cudnn).sonames.items() if package == "libcudnn8")
    assert len(cudnn_sonames) == 7
    listed = ", ".join(sorted([*IMAGE_SONAMES.split(", "), *cudnn_sonames]))
    assert unused.message == (
        f"no service built on base-gpu loads these CUDA 12.1.1 libraries of {rootfs}: {listed} "
        "(1,235,867 KiB: 1,300 KiB as the image's files, 1,234,567 KiB as dpkg's Installed-Size of libcudnn8); "
        f"{DISTRO_SERVES}"
    )


@needs_gcc
def test_the_images_own_copies_of_the_wheels_cuda_are_sized_as_installed(tmp_path: Path) -> None:
    """CUDA 12 wheels on the CUDA 12.1 image: DA222 names the image's copies it really holds,
    with their files' sizes; a library the wheels ship that the image lacks (cuDNN) is not one."""
    sp = _wheels(
        tmp_path / "env",
        {
            "nvidia-cuda-runtime-cu12": ("nvidia/cuda_runtime/lib", ["libcudart.so.12"]),
            "nvidia-cublas-cu12": ("nvidia/cublas/lib", ["libcublas.so.12", "libcublasLt.so.12"]),
            "nvidia-cudnn-cu12": ("nvidia/cudnn/lib", ["libcudnn.so.9"]),
        },
        "$ORIGIN/../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cublas/lib:$ORIGIN/../nvidia/cudnn/lib",
    )
    rootfs = _cuda_rootfs(tmp_path / "base")
    report = run_scan(ScanOptions((_fleet(tmp_path / "fleet"),), (sp,), rootfs=rootfs, env={"CUDA_VERSION": "12.1.1"}))
    assert _cuda(report.findings) == [
        Finding(
            FindingKind.DUPLICATE_CUDA,
            "docker/base-gpu/Dockerfile",
            2,
            f"the wheels ship CUDA 12 libraries that {rootfs} also has, and theirs are loaded first (RPATH): "
            "libcublas.so.12 (nvidia-cublas-cu12), libcublasLt.so.12 (nvidia-cublas-cu12), "
            "libcudart.so.12 (nvidia-cuda-runtime-cu12); the image's copies are dead weight (900 KiB as the image's files)",
        )
    ]


@needs_gcc
def test_a_layered_images_cuda_libraries_are_named_by_their_links_and_not_copied_out(tmp_path: Path) -> None:
    """A library with its soname link is known by the link and sized by the layer's index: none of
    its bytes leave the layer. One without a link is read for its DT_SONAME: a sparse copy."""
    from depaudit.image.open import open_image
    from depaudit.packages.image_cuda import SizeFrom, image_cuda

    image = open_image(_docker_save(_cuda_rootfs(tmp_path / "base"), ["CUDA_VERSION=12.1.1"], tmp_path / "cuda.tar"))
    held = image_cuda(image, load_cuda_rules())
    assert {s: (l.package, l.kib, l.size_from, l.path) for s, l in held.libraries.items()} == {
        soname: (package, kib, SizeFrom.FILE, path) for package, path, soname, kib in IMAGE_CUDA[:6]
    }
    copied = {path.relative_to(image.fs.root).as_posix() for path in image.fs.root.rglob("*.so.*") if path.is_file()}
    assert copied == {f"{CUDA_LIB}/libnvrtc.so.12.1.105".lstrip("/")}
    nvrtc = image.fs.root / CUDA_LIB.lstrip("/") / "libnvrtc.so.12.1.105"
    assert nvrtc.stat().st_size == 50 * 1024 and nvrtc.stat().st_blocks * 512 < 50 * 1024  # sparse: the headers only


def test_the_images_sizes_say_where_each_figure_comes_from() -> None:
    """Files sized by themselves; a package without its file list by its Installed-Size, counted
    only when every library of it is among those sized; else unknown."""
    from depaudit.packages.image_cuda import ImageCuda, ImageCudaLibrary, SizeFrom
    from depaudit.plan.cuda import _image_size

    image = ImageCuda("img", {
        "liba.so.1": ImageCudaLibrary("liba.so.1", "a1", 10, SizeFrom.FILE),
        "libb.so.1": ImageCudaLibrary("libb.so.1", "b1", None, SizeFrom.INSTALLED_SIZE),
        "libc.so.1": ImageCudaLibrary("libc.so.1", "b1", None, SizeFrom.INSTALLED_SIZE),
    }, {"b1": 500})
    assert [_image_size(image, sonames) for sonames in (["liba.so.1"], ["libb.so.1"], ["libb.so.1", "libc.so.1"],
                                                        ["liba.so.1", "libb.so.1"], ["liba.so.1", "libb.so.1", "libc.so.1"])] == [
        "10 KiB as the image's files",
        "size unknown",
        "500 KiB as dpkg's Installed-Size of b1",
        "10 KiB as the image's files; no size known for libb.so.1",
        "510 KiB: 10 KiB as the image's files, 500 KiB as dpkg's Installed-Size of b1",
    ]
