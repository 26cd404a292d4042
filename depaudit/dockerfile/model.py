"""One Dockerfile as a scan reads it: its bytes read once, its text parsed once.

A scan meets a Dockerfile many times: every service built on a family follows its FROM chain up
through it, the plan takes its apt-get install lists, the report its problems, the patch its
text. read_dockerfile() reads it into a Dockerfile value they all share; Dockerfiles keeps those
values for one scan, one per file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from depaudit.dockerfile import parse
from depaudit.dockerfile.parse import AptInstall, BuildContext, DockerfileImage, Instruction
from depaudit.dockerfile.problems import dockerfile_problems
from depaudit.findings import Finding, FindingKind
from depaudit.paths import project_root, within
from depaudit.reading import read_regular


@dataclass(frozen=True)
class Dockerfile:
    """One Dockerfile as read, and what its text says.

    `text` is decoded with surrogateescape: an edit of it writes undecodable bytes back out
    unchanged. What is parsed from it reads the text as errors="replace" decodes the bytes, as
    depaudit always has: an undecodable sequence is one U+FFFD there, not one lone surrogate per
    byte, so the keywords, package names and messages of a report stay what they were.
    """

    path: Path  # as the fleet found it: a config's path, a service folder's, an indexed family's
    display: str  # posix, as reports show it
    text: str | None  # None: it could not be read
    error: str | None = None  # why it could not be read (the strerror)
    refused: bool = False  # not read on purpose: a link out of the project
    # The variables it takes from outside: its apt lists may name packages through them.
    context: BuildContext = field(default_factory=BuildContext, compare=False, repr=False)
    # Parsed once, when the value is made; an unreadable file has none.
    instructions: tuple[Instruction, ...] = field(init=False, compare=False, repr=False)
    apt_installs: tuple[AptInstall, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        parsed = "" if self.text is None else _as_parsed(self.text)  # "": no instruction, no install
        # Derived from the fields: set past the frozen __setattr__, as the dataclasses docs do.
        object.__setattr__(self, "instructions", tuple(parse.instructions(parsed)))
        object.__setattr__(self, "apt_installs", tuple(parse.apt_installs(parsed, self.context)))

    # Only family Dockerfiles are checked (a service's is read for its FROM alone), and the check
    # is the costliest reading (it tries two patches): computed on first use, then kept.
    # cached_property stores into the instance __dict__, past the frozen __setattr__: this works
    # because the class has no __slots__ (keep it so).
    @cached_property
    def problems(self) -> tuple[tuple[int, str], ...]:
        """(line, message) for what a person should fix, or what depaudit reads but will not
        patch; none for a file that could not be read (that is reported on its own)."""
        return () if self.text is None else tuple(dockerfile_problems(_as_parsed(self.text), self.context))

    def findings(self) -> list[Finding]:
        """Its problems as report findings, or why it could not be read."""
        if self.text is None and self.refused:
            return [Finding(FindingKind.UNSAFE_MEMBER, self.display, None, f"rejected: {self.error}")]
        if self.text is None:
            return [Finding(FindingKind.UNREADABLE_FILE, self.display, None, f"cannot read: {self.error}")]
        return [Finding(FindingKind.DOCKERFILE, self.display, line, message) for line, message in self.problems]

    def image(self, inherited: Mapping[str, str] | None = None) -> DockerfileImage | None:
        """Its final stage's base and environment (`inherited`: the environment of the image it
        is built FROM); None when it could not be read or has no FROM."""
        return parse.image_of(self.instructions, inherited, self.context.build_args)


def _as_parsed(text: str) -> str:
    """The text as errors="replace" decodes the file's bytes: surrogateescape gives them back exactly."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def read_dockerfile(path: Path, display: str | None = None, boundary: Path | None = None) -> Dockerfile:
    """The Dockerfile at `path`, read now; `display` is how reports show it (default: the path).
    `boundary`: the project it belongs to; a file out of it (named so by a config, or a symbolic
    link leading there) is refused, never read."""
    shown = path.as_posix() if display is None else display
    if boundary is not None and not within(path, project_root(boundary)):
        # Read, it would be planned from; patched, --write would change a file of this machine.
        where = os.path.realpath(path)
        what = f"a symbolic link to {where}," if path.is_symlink() else "a file"
        return Dockerfile(path, shown, None, f"{what} outside the project: not read, never patched", refused=True)
    try:
        data = read_regular(path)  # a FIFO named Dockerfile: never blocks
    except OSError as error:
        return Dockerfile(path, shown, None, error.strerror)
    return Dockerfile(path, shown, data.decode("utf-8", errors="surrogateescape"))


class Dockerfiles:
    """The Dockerfiles one scan has read, by real path: a family Dockerfile that many services
    are built on, or a file named by two paths (a symlink, `..` in a config path), is read once."""

    def __init__(self) -> None:
        self._by_real_path: dict[str, Dockerfile] = {}

    def read(self, path: Path, display: str | None = None, boundary: Path | None = None) -> Dockerfile:
        """The Dockerfile at `path`, read on the first call for its file; `display` and
        `boundary` as for read_dockerfile."""
        key = os.path.realpath(path)  # unlike Path.resolve(), never raises on a symlink loop
        known = self._by_real_path.get(key)
        if known is None:
            known = self._by_real_path[key] = read_dockerfile(path, display, boundary)
        elif known.path != path or display not in (None, known.display):
            # The same file under another name: what was read, under the name asked for.
            known = replace(known, path=path, display=path.as_posix() if display is None else display)
        return known
