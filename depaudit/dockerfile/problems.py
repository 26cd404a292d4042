"""What a person should fix in a Dockerfile, or what depaudit reads but will not patch: unknown
instructions, a file that ends inside a continued instruction, a heredoc that never ends, apt
hygiene gaps (see parse.HYGIENE), apt in heredoc and exec-form RUNs, and a file no patch can be
made to (edit.patch_blocker)."""

from __future__ import annotations

import re

from depaudit.dockerfile.edit import patch_blocker
from depaudit.dockerfile.parse import BuildContext, HEREDOC, HYGIENE, KEYWORDS, apt_installs, instructions, takes_heredocs


def dockerfile_problems(text: str, context: BuildContext | None = None) -> list[tuple[int, str]]:
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
    if last is not None and last.end_line == len(raw) and not last.heredoc and _ends_continued(raw, escape):
        problems.append((last.line, "the file ends inside a continued instruction (a trailing backslash)"))
    for instruction in parsed:
        if not takes_heredocs(instruction.keyword, instruction.arguments):
            continue
        for marker in HEREDOC.finditer(instruction.arguments):
            word, strip_tabs = marker.group(3), marker.group(1) == "-"
            after = raw[instruction.line :]
            if not any((line.lstrip("\t") if strip_tabs else line) == word for line in after):
                problems.append((instruction.line, f"heredoc <<{word} never ends"))
    for install in apt_installs(text, context):
        if install.in_heredoc:
            problems.append(
                (install.instruction.line, "apt-get install inside a heredoc: depaudit reads it but will not patch it")
            )
        else:
            problems.extend((install.line, HYGIENE[gap]) for gap in install.missing)
        if install.unknown:
            words = " ".join(install.unknown)
            problems.append(
                (install.line, f"apt-get install {words}: the packages these name cannot be known here (a variable with"
                 " no default or build-arg, or a command's output); depaudit reads none from them and will not patch this install")
            )
    for instruction in parsed:
        if instruction.keyword == "RUN" and instruction.arguments.lstrip().startswith("[") and "apt" in instruction.arguments:
            problems.append((instruction.line, "apt in an exec-form RUN: depaudit will not read or patch it"))
    # A file no patch can be made to: unless a problem above already says why (no FROM, an endless heredoc).
    if not any(message.startswith(_UNFOLLOWABLE) for _, message in problems):
        blocker = patch_blocker(text, context)
        if blocker is not None:
            problems.append(blocker)
    return problems


def _ends_continued(raw: list[str], escape: str) -> bool:
    """Whether the last line of code continues (blank and comment lines after it are dropped)."""
    for line in reversed(raw):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return line.rstrip().endswith(escape)
    return False


# The problems that already say a file cannot be patched.
_UNFOLLOWABLE = ("no FROM instruction", "heredoc <<")
