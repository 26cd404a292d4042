"""Confinement as a property: whatever a project's requirements files and config name, reading
them opens nothing outside the project (an audit hook watches every open). CI runs a few hundred
examples; `DEPAUDIT_FUZZ_EXAMPLES=100000` runs a session by hand."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.fleet.config import ConfigError, load_config
from depaudit.paths import project_root
from depaudit.python.model import TargetPython
from depaudit.python.requirements import read_requirements
from helpers import opened_files

FUZZ = settings(
    max_examples=int(os.environ.get("DEPAUDIT_FUZZ_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TARGET = TargetPython(python_version="3.11", python_full_version="3.11.0")

# Paths a hostile file would name: up and out, absolute, through the project, odd bytes.
targets = st.one_of(
    st.sampled_from(["../outside.txt", "../../outside.txt", "/etc/hostname", "/etc/passwd", "sub/inner.txt", "inner.txt",
                     "sub/../inner.txt", "sub/../../outside.txt", "./inner.txt", "link-out.txt", "sub", "/", ".."]),
    st.lists(st.sampled_from(["..", ".", "sub", "inner.txt", "outside.txt", "etc", "x"]), min_size=1, max_size=6).map("/".join),
)
lines = st.one_of(
    st.tuples(st.sampled_from(["-r", "-c", "--requirement", "--constraint", "-r ", "-e"]), targets).map(lambda t: f"{t[0]} {t[1]}"),
    st.sampled_from(["six", "requests>=2", "# a comment", "", "-e .", "numpy ; python_version < '3.8'"]),
)


def project(folder: Path) -> tuple[Path, Path]:
    """A git project (a services folder inside) and a file beside it that must never be opened."""
    (folder / "repo" / ".git").mkdir(parents=True)
    (folder / "repo" / "svc" / "sub").mkdir(parents=True)
    (folder / "repo" / "svc" / "inner.txt").write_text("six\n")
    (folder / "repo" / "svc" / "sub" / "inner.txt").write_text("-r ../../../outside.txt\n")
    (folder / "outside.txt").write_text("root:x:0:0\n")
    (folder / "repo" / "svc" / "link-out.txt").symlink_to(folder / "outside.txt")
    return folder / "repo", folder / "outside.txt"


def outside(paths: list[str], root: Path) -> list[str]:
    """The paths outside `root`, but modules imported on first use (the Python installation)."""
    real = [os.path.realpath(path) for path in paths]
    code = tuple(os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix))
    return [path for path in real if not path.startswith((str(root) + os.sep, *code)) and path != str(root)]


@FUZZ
@given(st.lists(lines, min_size=1, max_size=8))
def test_no_requirements_file_opens_a_path_outside_its_project(written: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root, secret = project(Path(folder).resolve())
        (root / "svc" / "requirements.txt").write_text("\n".join(written) + "\n")
        with opened_files().watching(("open",), form="normal") as paths:
            declared, findings = read_requirements([root / "svc" / "requirements.txt"], root / "svc", TARGET)
        assert project_root(root / "svc") == root
        assert outside(paths, root) == []
        assert not any("root:x" in finding.message for finding in findings)
        assert not os.path.samefile(secret, root / "svc" / "requirements.txt")


keys = st.sampled_from(["entry", "path", "dockerfile"])


@FUZZ
@given(st.lists(st.tuples(keys, targets), min_size=1, max_size=4), targets)
def test_no_config_names_a_project_file_outside_its_project(services: list[tuple[str, str]], base: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root, _ = project(Path(folder).resolve())
        tables = []
        for number, (key, value) in enumerate(services):
            entry = 'path = "svc"\n' if key == "dockerfile" else ""
            tables.append(f'[services.s{number}]\n{entry}{key} = "{value}"\n')
        (root / "depaudit.toml").write_text(f'base-image = "{base}"\n' + "".join(tables))
        try:
            config = load_config(root / "depaudit.toml")
        except ConfigError:
            return  # refused (or otherwise malformed): nothing is read for it
        named = [p for s in config.services.values() for p in (s.path, s.entry, s.dockerfile) if p is not None]
        if config.base_image is not None and os.path.isabs(config.base_image):
            named.append(Path(config.base_image))
        assert [str(p) for p in named if outside([str(p)], root)] == []
