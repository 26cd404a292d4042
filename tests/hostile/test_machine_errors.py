"""A full disk is this machine's error, never the image's: copying files out of an image into a
temporary folder that cannot take them ends the scan with exit 2 and one line naming the folder
and the errno, no report and no finding on the image (a half-written copy once read as
`not_elf`: "the file is empty").

The writes fail for real: a file size limit on the scan's process (RLIMIT_FSIZE; Python ignores
SIGXFSZ, so a write past it fails with EFBIG), and a 64 KiB tmpfs where mounting is permitted
(ENOSPC). Either way the temporary folder is left empty.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import build_so, elf_folder
from image_builders import docker_save, docker_save_members, file, gzipped, tar_bytes

LIB = "usr/lib/x86_64-linux-gnu"
LIMIT = 64 * 1024
ADVICE = "free space there or point TMPDIR at a folder with room, then scan again"


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A real libbig.so.1, padded past the limit (its copy cannot be written), and a real
    extension module of the service that needs it (so the scan copies libbig out of the image)."""
    folder = elf_folder(tmp_path_factory, "machine-errors")
    big = build_so(folder / "libbig.so.1", soname="libbig.so.1")
    extension = build_so(folder / "_native.cpython-311-x86_64-linux-gnu.so", needed=[big])
    return big.read_bytes() + bytes(4 * LIMIT), extension.read_bytes()


def _scene(tmp_path: Path, form: str, objects: tuple[bytes, bytes]) -> tuple[Path, Path, Path]:
    service, site_packages, tmpdir = tmp_path / "svc", tmp_path / "site-packages", tmp_path / "tmp"
    for made in (service, site_packages, tmpdir):
        made.mkdir()
    big, extension = objects
    (service / "main.py").write_text("import _native\n")
    (service / "_native.cpython-311-x86_64-linux-gnu.so").write_bytes(extension)
    layer = tar_bytes([file("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'), file(f"{LIB}/libbig.so.1", big)])
    image = tmp_path / "image.tar"
    if form == "plain layer":
        docker_save(image, [layer])
    elif form == "gzip layer":
        docker_save(image, [gzipped(layer)])
    else:  # `docker save | gzip`: the archive is decompressed into the temporary folder first
        image.write_bytes(gzipped(tar_bytes(docker_save_members([layer]))))
    return service, image, tmpdir


def _scan(service: Path, image: Path, tmpdir: Path, *more: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "depaudit", "scan", str(service), "--image", str(image),
               "--site-packages", str(service.parent / "site-packages"), "--no-cache", "--jobs", "1", "--no-progress", *more]
    return subprocess.run(
        command, env={**os.environ, "TMPDIR": str(tmpdir)}, preexec_fn=limited, capture_output=True, text=True, timeout=300,
    )


DOING = {
    "plain layer": "copying /usr/lib/x86_64-linux-gnu/libbig.so.1 out of {image}",
    "gzip layer": "decompressing a layer of {image}",
    "gzipped archive": "decompressing {image}",
}


@pytest.mark.parametrize("form", list(DOING))
def test_a_file_size_limit_is_this_machines_error_not_the_images(tmp_path: Path, form: str, objects: tuple[bytes, bytes]) -> None:
    service, image, tmpdir = _scene(tmp_path, form, objects)
    done = _scan(service, image, tmpdir, limit=LIMIT)
    doing = DOING[form].format(image=image)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"depaudit: error: this machine, not the input: cannot write to {tmpdir} (File too large, EFBIG) while {doing}; {ADVICE}\n"
    )
    assert os.listdir(tmpdir) == []  # the scratch folder went with the run


@pytest.mark.parametrize("form", list(DOING))
def test_without_the_limit_the_same_image_scans_and_finds_the_library(tmp_path: Path, form: str, objects: tuple[bytes, bytes]) -> None:
    """The control: the failure above is the limit's, not the image's."""
    service, image, tmpdir = _scene(tmp_path, form, objects)
    done = _scan(service, image, tmpdir, "--format", "json")
    report = json.loads(done.stdout)
    needs = {need["name"]: (need["status"], need["found_at"]) for need in report["services"][0]["needs"]}
    assert needs["libbig.so.1"] == ("base-image", f"/{LIB}/libbig.so.1")
    assert (report["findings"], done.stderr) == ([], "")
    assert os.listdir(tmpdir) == []


@pytest.fixture()
def small_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def test_a_full_tmpfs_is_this_machines_error_not_the_images(tmp_path: Path, small_tmpfs: Path, objects: tuple[bytes, bytes]) -> None:
    service, image, _ = _scene(tmp_path, "plain layer", objects)
    done = _scan(service, image, small_tmpfs)
    doing = DOING["plain layer"].format(image=image)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"depaudit: error: this machine, not the input: cannot write to {small_tmpfs} (No space left on device, ENOSPC)"
        f" while {doing}; {ADVICE}\n"
    )
    assert os.listdir(small_tmpfs) == []
