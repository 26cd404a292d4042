"""Real dist-info folders, written the way pip installs a wheel."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest


def _record_row(path: str, data: bytes | None) -> str:
    if data is None:
        return f"{path},,\n"
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def write_dist(
    site_packages: Path,
    name: str,
    version: str = "1.0",
    *,
    requires: Sequence[str] = (),
    files: Mapping[str, str | bytes] | None = None,
    top_level: Sequence[str] | None = None,
    record_only: Sequence[str] = (),
) -> Path:
    """Write `<name>-<version>.dist-info` (METADATA, RECORD, INSTALLER, top_level.txt) and `files`.

    `files` are created with their content and listed in RECORD with their hash; `record_only`
    entries are listed without being created (scripts in `../../../bin/`, say). Returns the
    dist-info folder.
    """
    site_packages.mkdir(parents=True, exist_ok=True)
    info_name = f"{name.replace('-', '_')}-{version}.dist-info"
    info = site_packages / info_name
    info.mkdir()
    written: dict[str, bytes | None] = {}
    for relative, content in (files or {}).items():
        data = content if isinstance(content, bytes) else content.encode()
        target = site_packages / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written[relative] = data
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    meta = ("\n".join(metadata) + "\n\nA description body.\n").encode()
    (info / "METADATA").write_bytes(meta)
    written[f"{info_name}/METADATA"] = meta
    (info / "INSTALLER").write_bytes(b"pip\n")
    written[f"{info_name}/INSTALLER"] = b"pip\n"
    if top_level is not None:
        text = "".join(f"{t}\n" for t in top_level).encode()
        (info / "top_level.txt").write_bytes(text)
        written[f"{info_name}/top_level.txt"] = text
    rows = [_record_row(path, data) for path, data in written.items()]
    rows += [_record_row(path, None) for path in record_only]
    rows.append(_record_row(f"{info_name}/RECORD", None))
    (info / "RECORD").write_text("".join(rows))
    return info


@pytest.fixture()
def dist() -> Callable[..., Path]:
    """The dist-info writer, as a fixture (test modules cannot import a conftest)."""
    return write_dist
