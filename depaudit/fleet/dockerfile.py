"""What a Dockerfile says about the image it builds: its base and its environment.

Enough of the format for the FROM / ARG / ENV chain: continuation lines, comments, CRLF,
parser directives, ARG defaults before FROM, multi-stage builds (the last stage is the image),
`ENV K=V ...` and the legacy `ENV K V`, `$VAR` / `${VAR}` / `${VAR:-default}` substitution.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::?[-+]([^}]*))?\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    arguments: str
    line: int  # 1-based line where it starts
    end_line: int = 0  # 1-based line where it ends (continuations and heredoc bodies included)
    heredoc: str = ""  # the bodies of its heredocs, if any: read, never patched

    @property
    def lines(self) -> range:
        return range(self.line, max(self.line, self.end_line) + 1)


@dataclass(frozen=True)
class AptPackage:
    name: str  # without a version pin
    line: int  # where the token stands


@dataclass(frozen=True)
class AptInstall:
    """One `apt-get install` (or `apt install`) command inside a RUN instruction."""

    instruction: Instruction
    packages: tuple[AptPackage, ...]
    flags: tuple[str, ...]  # -y, --no-install-recommends, ...
    in_heredoc: bool = False  # read from a heredoc body: counted, never patched


@dataclass
class DockerfileImage:
    base: str  # the final stage's FROM, substituted; a stage name is followed to its base
    env: dict[str, str] = field(default_factory=dict)  # ENV of the final stage, including stages it builds on


_HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def instructions(text: str) -> list[Instruction]:
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    escape = "\\"
    heredocs: list[tuple[str, bool]] = []  # terminators still to meet, and whether tabs are stripped
    raw = text.replace("\r\n", "\n").split("\n")
    for number, line_text in enumerate(raw, start=1):
        if heredocs:
            # A heredoc body belongs to the instruction above, up to its terminator line.
            word, strip_tabs = heredocs[0]
            last = result[-1]
            if (line_text.lstrip("\t") if strip_tabs else line_text) == word:
                heredocs.pop(0)
                result[-1] = Instruction(last.keyword, last.arguments, last.line, number, last.heredoc)
            else:
                result[-1] = Instruction(last.keyword, last.arguments, last.line, number, last.heredoc + line_text + "\n")
            continue
        line = line_text.rstrip()
        stripped = line.strip()
        if not pending:
            directive = re.match(r"#\s*escape\s*=\s*(\S)", stripped) if not result else None
            if directive:
                escape = directive.group(1)
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        elif stripped.startswith("#") or not stripped:
            continue  # comments and blank lines inside a continued instruction are dropped
        if line.endswith(escape):
            pending.append(line[: -len(escape)])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending)
        keyword, _, arguments = joined.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), start, number))
        pending = []
        heredocs = [(m.group(3), m.group(1) == "-") for m in _HEREDOC.finditer(arguments)]
    if pending:  # a continuation at the end of the file
        joined = " ".join(part.strip() for part in pending)
        keyword, _, arguments = joined.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), start, len(raw)))
    return result


_APT_INSTALL = re.compile(r"(?:^|[;&|]\s*)(?:sudo\s+)?(?:DEBIAN_FRONTEND=\S+\s+)?apt(?:-get)?\s+((?:-\S+\s+)*)install\b([^;&|]*)")


def apt_installs(text: str) -> list[AptInstall]:
    """Every `apt-get install` list of the last stage's RUN instructions (the image's own)."""
    found: list[AptInstall] = []
    raw_lines = text.replace("\r\n", "\n").split("\n")
    for instruction in _last_stage(instructions(text)):
        if instruction.keyword != "RUN" or instruction.arguments.lstrip().startswith("["):
            continue  # exec-form RUN: not a shell command line
        for source, in_heredoc in ((instruction.arguments, False), (instruction.heredoc.replace("\\\n", " "), True)):
            for match in _APT_INSTALL.finditer(source.replace("\n", ";")):
                words = (match.group(1) + " " + match.group(2)).split()
                flags = tuple(w for w in words if w.startswith("-"))
                names = [w.split("=", 1)[0] for w in words if not w.startswith(("-", "$")) and w not in ("\\",)]
                packages = tuple(AptPackage(name, _line_of(name, instruction, raw_lines)) for name in names)
                found.append(AptInstall(instruction, packages, flags, in_heredoc))
    return found


# The instructions of the Dockerfile reference; anything else is a mistake.
KEYWORDS = frozenset(
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD "
    "STOPSIGNAL HEALTHCHECK SHELL".split()
)


def dockerfile_problems(text: str) -> list[tuple[int, str]]:
    """(line, message) for what a person should fix, or what depaudit reads but will not patch."""
    problems = []
    parsed = instructions(text)
    raw = text.replace("\r\n", "\n").split("\n")
    if not any(i.keyword == "FROM" for i in parsed):
        problems.append((1, "no FROM instruction: not a Dockerfile depaudit can follow"))
    for instruction in parsed:
        if instruction.keyword not in KEYWORDS:
            problems.append((instruction.line, f"unknown instruction {instruction.keyword!r}"))
    last = parsed[-1] if parsed else None
    escape = "`" if re.match(r"#\s*escape\s*=\s*`", raw[0] if raw else "") else "\\"
    if last is not None and last.end_line == len(raw) and raw[-1].rstrip().endswith(escape) and raw[-1].strip():
        problems.append((last.line, "the file ends inside a continued instruction (a trailing backslash)"))
    for instruction in parsed:
        for marker in _HEREDOC.finditer(instruction.arguments):
            word, strip_tabs = marker.group(3), marker.group(1) == "-"
            after = raw[instruction.line :]
            if not any((line.lstrip("\t") if strip_tabs else line) == word for line in after):
                problems.append((instruction.line, f"heredoc <<{word} never ends"))
    for install in apt_installs(text):
        if install.in_heredoc:
            problems.append(
                (install.instruction.line, "apt-get install inside a heredoc: depaudit reads it but will not patch it")
            )
    for instruction in parsed:
        if instruction.keyword == "RUN" and instruction.arguments.lstrip().startswith("[") and "apt" in instruction.arguments:
            problems.append((instruction.line, "apt in an exec-form RUN: depaudit will not read or patch it"))
    return problems


def _last_stage(all_instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, instruction in enumerate(all_instructions) if instruction.keyword == "FROM"]
    return all_instructions[starts[-1]:] if starts else all_instructions


def _line_of(token: str, instruction: Instruction, raw_lines: list[str]) -> int:
    pattern = re.compile(rf"(?<![\w.+-]){re.escape(token)}(?![\w.+-])")
    for number in instruction.lines:
        if number - 1 < len(raw_lines) and pattern.search(raw_lines[number - 1].split("#", 1)[0]):
            return number
    return instruction.line


def substitute(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = variables.get(name)
        return value if value else (default or "")

    return _VARIABLE.sub(replace, text)


def read_image(text: str, inherited: Mapping[str, str] | None = None) -> DockerfileImage | None:
    """The final stage's base and environment; None when there is no FROM.

    `inherited` is the environment of the image it is built FROM (so that
    `ENV LD_LIBRARY_PATH=/x:$LD_LIBRARY_PATH` extends it).
    """
    global_args: dict[str, str] = {}
    stages: dict[str, DockerfileImage] = {}
    current: DockerfileImage | None = None
    variables: dict[str, str] = {}
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = substitute(instruction.arguments, global_args).split()
            words = [w for w in words if not w.startswith("--")]  # --platform=...
            reference = words[0] if words else ""
            parent = stages.get(reference.lower())
            current = DockerfileImage(
                parent.base if parent else reference, dict(parent.env) if parent else dict(inherited or {})
            )
            if len(words) >= 3 and words[1].lower() == "as":
                stages[words[2].lower()] = current
            variables = {**global_args, **current.env}
        elif instruction.keyword == "ARG":
            for name, value in _pairs(instruction.arguments, variables, allow_bare=True):
                if current is None:
                    global_args[name] = value
                # A bare `ARG X` in a stage brings the global default back into scope.
                variables[name] = value or global_args.get(name, "")
        elif instruction.keyword == "ENV" and current is not None:
            for name, value in _pairs(instruction.arguments, variables, allow_bare=False):
                current.env[name] = value
                variables[name] = value
    return current


def _pairs(arguments: str, variables: dict[str, str], *, allow_bare: bool) -> list[tuple[str, str]]:
    try:
        words = shlex.split(arguments, posix=True)
    except ValueError:
        words = arguments.split()
    if words and "=" not in words[0] and not allow_bare and len(words) >= 2:
        return [(words[0], substitute(" ".join(words[1:]), variables))]  # legacy `ENV K V`
    pairs = []
    for word in words:
        name, sep, value = word.partition("=")
        if name:
            pairs.append((name, substitute(value, variables) if sep else ""))
    return pairs


def read_dockerfile(path: Path, inherited: Mapping[str, str] | None = None) -> DockerfileImage | None:
    try:
        return read_image(path.read_text(encoding="utf-8", errors="replace"), inherited)
    except OSError:
        return None
