"""The programs a Dockerfile's image runs itself: its ENTRYPOINT, CMD, HEALTHCHECK and SHELL, and
the commands of the RUN instructions after a line. A package that provides one of them is used,
whatever the services import (tini as the entrypoint, curl in a health check, git for
`pip install git+…`)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable

from depaudit.dockerfile.parse import Instruction

# Where a shell command starts: after a separator, a pipe or a newline.
_SEPARATORS = re.compile(r"&&|\|\||[;|\n]")
# Words before the program itself: assignments, and commands that run the next word.
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset({"sudo", "exec", "env", "nohup", "time", "command", "xargs"})
# Shell syntax and builtins: no package provides them.
_BUILTINS = frozenset(
    {"cd", "echo", "export", "set", "unset", "if", "then", "else", "elif", "fi", "for", "while", "do", "done",
     "case", "esac", "true", "false", "test", "[", "[[", "]", "]]", "source", ".", "exit", "return", "trap",
     "shift", "read", "eval", "umask", "ulimit", "wait", "{", "}", "(", ")", "!", "function", "local"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
_PIP_GIT = re.compile(r"\bgit\+(?:https?|ssh|git|file)://")


def programs_run(instructions: Iterable[Instruction], after_line: int = 0) -> dict[str, int]:
    """Program name (its basename) → the first line that runs it. RUN instructions count only
    after `after_line` (a package is used by what runs once it is installed)."""
    found: dict[str, int] = {}
    for instruction in instructions:
        keyword, arguments = instruction.keyword, instruction.arguments
        if keyword == "HEALTHCHECK":
            command = re.search(r"(?:^|\s)CMD\s+(.*)", arguments, re.S)
            words = _command(command.group(1)) if command else []
        elif keyword in ("ENTRYPOINT", "CMD", "SHELL"):
            words = _command(arguments)
        elif keyword == "RUN" and instruction.line > after_line:
            words = _command(arguments)
            if _PIP_GIT.search(arguments):
                words.append("git")  # pip clones a git+ requirement with the git program
        else:
            continue
        for word in words:
            found.setdefault(word, instruction.line)
    return found


def _command(arguments: str) -> list[str]:
    """The programs of an exec-form array (its first element) or of a shell-form command line."""
    text = arguments.strip()
    if text.startswith("["):
        try:
            form = json.loads(text)
        except ValueError:
            form = None
        if isinstance(form, list) and form and all(isinstance(word, str) for word in form):
            found = [_base(form[0])] if form[0] else []
            if found and found[0] in _SHELLS and "-c" in form[1:-1]:
                found += _command(form[form.index("-c", 1) + 1])  # ["sh", "-c", "curl -f … || exit 1"]
            return found
    programs = []
    for segment in _SEPARATORS.split(text.replace("\\\n", " ")):
        try:
            words = shlex.split(segment, comments=True)
        except ValueError:
            words = segment.split()
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS or words[0].startswith("-")):
            words = words[1:]
        if words and words[0] not in _BUILTINS and not words[0].startswith("$"):
            programs.append(_base(words[0]))
    return programs


def _base(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]
