"""A Dockerfile's text with apt packages added (and, if asked, removed), in the file's own style.

Bytes outside the lines we add or change stay as they are: line endings (CRLF), the missing
final newline, indentation, continuation backslashes, comments. Packages are merged into the
last stage's first `apt-get install` list; a file without one gets a new RUN with the usual
apt hygiene. Heredoc and exec-form RUNs are never edited.

When packages are merged into an existing RUN, that RUN is made hygienic in the same edit, in
its own layout (one line, a leading-`&&` column or trailing `&& \\` lines):
  - `-y` after `install` when no flag or apt.conf line answers apt's prompt;
  - `apt-get update && ` right before the command when the RUN has no update before it (not
    after a `|` or `||`, where it would change what runs);
  - `&& rm -rf /var/lib/apt/lists/*` at the end of the RUN when it does not remove the lists
    (not after a trailing operator or a shell comment, and not under a cache mount of them).
`--no-install-recommends` is deliberately never added to an existing install: one apt-get
install shares its flags, so adding it would silently drop the Recommends of every package the
list already had, which the image may rely on. The missing flag is reported instead
(problems.dockerfile_problems), for a person to decide. A RUN we add no package to is never
rewritten for hygiene alone: its gaps are reported, not patched. A second run has nothing to
add, so the patch is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from depaudit.dockerfile.parse import (
    AptInstall,
    BuildContext,
    Instruction,
    apt_installs,
    escape_of,
    install_columns,
    instructions,
)

_NEW_RUN = (
    "RUN apt-get update && apt-get install -y --no-install-recommends {escape}{eol}"
    "{packages}"
    "    && rm -rf /var/lib/apt/lists/*{eol}"
)


def split_lines(text: str) -> list[str]:
    """Lines ending at "\n" only, endings kept: str.splitlines() also breaks at \r, \f, \u2028...,
    which neither the Dockerfile reader nor git treats as line ends."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def _patchable(text: str, context: BuildContext | None) -> list[AptInstall]:
    return _editable(apt_installs(text, context))


def _editable(installs: list[AptInstall]) -> list[AptInstall]:
    """The installs an edit may touch: not in a heredoc, and with every word of the list known."""
    return [i for i in installs if not i.in_heredoc and not i.instruction.heredoc and not i.unknown]


def patch_dockerfile(text: str, add: Sequence[str], remove: Sequence[str] = (), context: BuildContext | None = None) -> str:
    """The Dockerfile with `add` installed by its last stage (and `remove` dropped), or the text
    unchanged when no edit reads back as intended. Packages go into the stage's first apt-get
    install; when that edit does not read back right, into a RUN of their own."""
    for candidate, runs_added in _candidates(text, add, remove, context):
        if candidate == text or _as_intended(text, candidate, add, remove, runs_added, context):
            return candidate
    return text


def _candidates(
    text: str, add: Sequence[str], remove: Sequence[str], context: BuildContext | None
) -> Iterator[tuple[str, int]]:
    """Patched texts to try in turn, each with the number of instructions it means to add (a RUN
    pruned away counts -1). Packages are added first, then removed: a list that gains ours is
    never one the removal empties."""
    lines = split_lines(text)
    eol = _line_end(lines)
    every = apt_installs(text, context)
    installs = _editable(every)
    # A package a heredoc installs is installed: never add it again.
    wanted = [p for p in dict.fromkeys(add) if not any(p == q.name for i in every for q in i.packages)]
    added: list[tuple[str, int]] = []
    if not wanted:
        added.append((text, 0))
    else:
        if installs:
            merged = "".join(_insert(list(lines), installs[0], wanted, eol, text))
            if merged != text:  # else nothing could be merged: no reason to touch the RUN for hygiene either
                added.append((_make_hygienic(merged, eol, context), 0))
        added.append(("".join(_new_run(lines, text, wanted, eol)), 1))
    for candidate, runs in added:
        pruned = _editable(apt_installs(candidate, context)) if remove else []
        if pruned:
            kept_lines, dropped = _remove(split_lines(candidate), pruned, set(remove), escape_of(candidate))
            candidate, runs = "".join(kept_lines), runs - dropped
        yield candidate, runs


def _line_end(lines: list[str]) -> str:
    """The file's own line end: CRLF when most of its lines end so."""
    crlf = sum(line.endswith("\r\n") for line in lines)
    return "\r\n" if crlf > sum(line.endswith("\n") for line in lines) - crlf else "\n"


def _as_intended(
    old: str, new: str, add: Sequence[str], remove: Sequence[str], runs_added: int, context: BuildContext | None
) -> bool:
    """The patched file, read back: every instruction but the edited RUNs as it was, as many RUNs
    more as were meant (a new RUN swallowed by a continuation above it is none), the added
    packages in RUNs we may patch, and no other package come or gone."""
    before, after = instructions(old), instructions(new)
    if [_shape(i) for i in before if _shape(i)] != [_shape(i) for i in after if _shape(i)]:
        return False
    if len(after) - len(before) != runs_added:
        return False
    old_names, new_names = _package_names(old, context, patchable=False), _package_names(new, context, patchable=False)
    wanted = set(add) - old_names
    return (
        wanted <= _package_names(new, context, patchable=True)
        and new_names - wanted <= old_names
        and old_names - set(remove) <= new_names
    )


def _shape(instruction: Instruction) -> tuple[str, ...]:
    """What a patch must leave alone: every instruction but a plain shell RUN, body and all."""
    if instruction.keyword == "RUN" and not instruction.heredoc and not instruction.arguments.lstrip().startswith("["):
        return ()
    return (instruction.keyword, instruction.arguments, instruction.heredoc)


def _package_names(text: str, context: BuildContext | None, *, patchable: bool) -> set[str]:
    installs = _patchable(text, context) if patchable else apt_installs(text, context)
    return {package.name for install in installs for package in install.packages}


# Names no Debian or Ubuntu archive carries, sorting before and after any real one: a sorted
# column takes them at its first and at its last place. Asking to add them shows whether a
# patch can be made.
_PROBES = ("0-depaudit-probe", "zz-depaudit-probe")


def patch_blocker(text: str, context: BuildContext | None = None) -> tuple[int, str] | None:
    """(line, message) when depaudit could not add a package to this Dockerfile; None when it can."""
    if all(patch_dockerfile(text, [probe], context=context) != text for probe in _PROBES):
        return None
    installs = _patchable(text, context)
    parsed = instructions(text)
    line = installs[0].line if installs else (parsed[-1].line if parsed else 1)
    where = "the apt-get install here" if installs else "a new RUN after this instruction"
    return (
        line,
        f"depaudit cannot add packages to {where} and read the file back as intended: the patch and --write"
        " leave this Dockerfile as it is; add the packages the report lists by hand",
    )


_LISTS_CLEANUP = "rm -rf /var/lib/apt/lists/*"


def _make_hygienic(text: str, eol: str, context: BuildContext | None) -> str:
    """The RUN we just merged packages into, with the hygiene it lacks (see the module docstring)."""
    installs = _patchable(text, context)
    columns = install_columns(installs[0], text) if installs else None
    if not installs or not columns:
        return text
    install = installs[0]
    arguments = install.instruction.arguments
    lines = split_lines(text)
    escape = escape_of(text)
    inserts: list[tuple[int, int, str]] = []  # (line, column, text): within a line
    new_line: tuple[int, str] | None = None  # (after line, text): a line of its own
    if "lists" in install.missing:
        last_line, last_column = columns[-1]
        body = lines[last_line - 1].rstrip("\r\n")
        ending = lines[last_line - 1][len(body) :]
        code_lines = sorted({line for line, _ in columns})
        # Not after a dangling operator or an unfinished continuation, nor where a shell comment
        # would swallow it (the joined RUN is one shell line: a `#` anywhere hides what follows).
        dangling = arguments.rstrip()[-1:] in (";", "&", "|", "(", "{") or body.rstrip().endswith(escape)
        if not dangling and not re.search(r"(?:^|\s)#", arguments):
            if len(code_lines) == 1:
                inserts.append((last_line, last_column + 1, f" && {_LISTS_CLEANUP}"))
            else:
                indent, trailing = _chain_style(lines, code_lines, escape)
                operator = " && " if trailing else " "
                lines[last_line - 1] = body[: last_column + 1] + operator + escape + (ending or eol)
                new_line = (last_line, f"{indent}{'' if trailing else '&& '}{_LISTS_CLEANUP}{ending}")
    if "yes" in install.missing:
        line, column = columns[install.verb_end - 1]
        inserts.append((line, column + 1, " -y"))
    if "update" in install.missing and not arguments[: install.start].rstrip().endswith("|"):
        command = arguments[install.start : install.verb_end]
        tool = "apt-get" if re.search(r"(?<![\w-])apt-get\s", command) else "apt"
        sudo = "sudo " if command.startswith("sudo") else ""
        inserts.append((*columns[install.start], f"{sudo}{tool} update && "))
    # From the right, so that each column still points where it did.
    for line, column, insert in sorted(inserts, reverse=True):
        lines[line - 1] = lines[line - 1][:column] + insert + lines[line - 1][column:]
    if new_line is not None:
        lines.insert(new_line[0], new_line[1])
    return "".join(lines)


def _chain_style(lines: list[str], code_lines: list[int], escape: str) -> tuple[str, bool]:
    """(indent, trailing) of the RUN's `&&` continuation lines: `    && cmd` lines, or `cmd && \\` lines
    followed by indented commands; a RUN with neither gets a leading `    && `."""
    bodies = [lines[n - 1].rstrip("\r\n") for n in code_lines]
    for body in bodies[1:]:
        if body.lstrip().startswith("&&"):
            return body[: len(body) - len(body.lstrip())], False
    for index, body in enumerate(bodies[:-1]):
        if body.rstrip().removesuffix(escape).rstrip().endswith("&&"):
            following = bodies[index + 1]
            return following[: len(following) - len(following.lstrip())], True
    continued = bodies[1:] or [""]
    return ("\t" if continued[0].startswith("\t") else "    "), False


def _insert(lines: list[str], install: AptInstall, add: list[str], eol: str, text: str) -> list[str]:
    escape = escape_of(text)  # `\`, or the backtick of `# escape=``
    columns = install_columns(install, text)
    package_lines = sorted({p.line for p in install.packages})
    one_per_line = len(package_lines) == len(install.packages) and len(package_lines) > 1
    if one_per_line:
        # A column of `    pkg \` lines: new lines in the same style, at their sorted place.
        names = [p.name for p in install.packages]
        column_sorted = names == sorted(names)
        template = lines[package_lines[0] - 1]
        indent = template[: len(template) - len(template.lstrip())]
        for package in sorted(add, reverse=True):
            position = package_lines[-1]  # after the last package line
            if column_sorted:
                later = [p.line for p in install.packages if p.name > package]
                position = (min(later) - 1) if later else package_lines[-1]
            last_line = lines[position - 1].rstrip("\r\n")
            if position == package_lines[-1] and (
                not last_line.endswith(escape) or _more_after_command(install, columns, position, last_line, escape)
            ):
                # The last package line ends the command: continue it and add ours as the last; what
                # followed the command on that line (`&& rm ...`, `; next`) moves down with ours.
                body = lines[position - 1].rstrip("\r\n")
                ending = lines[position - 1][len(body) :]
                cut = len(body.rstrip())
                if columns and columns[install.end - 1][0] == position:
                    cut = columns[install.end - 1][1] + 1
                lines[position - 1] = f"{body[:cut]} {escape}{ending or eol}"
                lines.insert(position, f"{indent}{package}{body[cut:].rstrip()}{ending}")  # no final newline stays so
            else:
                if not lines[position - 1].endswith("\n"):
                    lines[position - 1] += eol  # the file's last line: ours goes on a line of its own
                lines.insert(position, f"{indent}{package} {escape}{eol}")
        return lines
    # Inline packages: ours go right after the command's last word, where the reader saw it end
    # (not at a later `git clone` that happens to repeat a package's name).
    if columns:  # also a list of `$PACKAGES` only: ours go after it
        number, column = columns[install.end - 1]
        line = lines[number - 1]
        lines[number - 1] = line[: column + 1] + "".join(f" {p}" for p in sorted(add)) + line[column + 1 :]
        return lines
    last = install.packages[-1] if install.packages else None
    number = last.line if last else install.instruction.line
    line = lines[number - 1]
    token = re.compile(rf"(?<![\w.+-]){re.escape(last.name)}(=\S+)?(?![\w.+-])") if last else None
    match = None
    for found in token.finditer(line) if token else ():
        match = found
    if match is None:
        return lines
    lines[number - 1] = line[: match.end()] + "".join(f" {p}" for p in sorted(add)) + line[match.end() :]
    return lines


def _more_after_command(
    install: AptInstall, columns: list[tuple[int, int]] | None, number: int, body: str, escape: str
) -> bool:
    """Whether the install's command ends on line `number` with more shell code after it (`pkg; next \\`)."""
    if not columns:
        return False
    end_line, end_column = columns[install.end - 1]
    return end_line == number and body[end_column + 1 :].strip() not in ("", escape)


def _remove(lines: list[str], installs: list[AptInstall], remove: set[str], escape: str) -> tuple[list[str], int]:
    """The lines without the packages in `remove`, and how many RUNs went whole: a list the removal
    would empty goes with its RUN when the RUN does nothing but apt's own housekeeping, else it
    stays (prune_leaves() says so)."""
    drop: set[int] = set()
    dropped_runs = 0
    for install in installs:
        keep = [p for p in install.packages if p.name not in remove or p.variable]
        if not keep:
            if _only_apt(install, installs):
                drop.update(number - 1 for number in install.instruction.lines)
                dropped_runs += 1
            continue
        for package in install.packages:
            if package.name not in remove or package.variable:
                continue  # a package a variable names: its line holds the variable, not the name
            text = lines[package.line - 1]
            body = text.rstrip("\r\n")
            ending = text[len(body) :]
            stripped = body.strip().removesuffix(escape).strip()
            if stripped == package.name or stripped.split("=", 1)[0] == package.name:
                drop.add(package.line - 1)  # the package has its own line
            else:
                pattern = re.compile(rf"\s+{re.escape(package.name)}(=\S+)?(?![\w.+-])")
                lines[package.line - 1] = pattern.sub("", body, count=1) + ending
    for index in sorted(drop):
        if not lines[index].rstrip().endswith(escape):
            _end_continuation(lines, index, drop, escape)  # the dropped line ended the RUN: so does the one above
    return [line for index, line in enumerate(lines) if index not in drop], dropped_runs


# The commands a RUN around an apt-get install may hold and still have no other purpose.
_APT_HOUSEKEEPING = re.compile(
    r"(?:sudo\s+)?(?:DEBIAN_FRONTEND=\S+\s+)?apt(?:-get)?\s+(?:-\S+\s+)*(?:update|clean|autoclean|autoremove)(?:\s+-\S+)*"
    r"|rm\s+-\w+\s+/var/lib/apt/lists/?\*?|set\s+-\w+|true|:"
)


def _only_apt(install: AptInstall, installs: list[AptInstall]) -> bool:
    """Whether the install's RUN does nothing but this install and apt's housekeeping: then a
    list pruned empty takes the whole RUN with it."""
    instruction = install.instruction
    if sum(i.instruction is instruction for i in installs) != 1:
        return False
    arguments = instruction.arguments
    before, after = arguments[: install.start], arguments[install.end :]
    before = re.sub(r"^(?:--\S+\s+)*", "", before)
    commands = re.split(r"\s*(?:&&|;)\s*", re.sub(r"[(){}]", " ", f"{before} {after}").strip())
    return all(not command or _APT_HOUSEKEEPING.fullmatch(command) for command in commands)


def prune_leaves(
    text: str, remove: Sequence[str], add: Sequence[str] = (), context: BuildContext | None = None
) -> list[tuple[int, str]]:
    """(line, message) for each package `remove` names that the patch adding `add` and removing
    `remove` leaves in place, and why."""
    patched = patch_dockerfile(text, add, remove, context)
    left = {p.name for i in apt_installs(patched, context) for p in i.packages} & set(remove)
    if not left or patched == text and patch_blocker(text, context) is not None:
        return []  # nothing left; or no edit at all, which its own finding explains
    leaves: list[tuple[int, str]] = []
    every = apt_installs(text, context)
    editable = _editable(every)
    for install in editable:  # a heredoc's, or a list with words it cannot read: its problem says it is never edited
        names = [p for p in install.packages if p.name in left]
        for package in (p for p in names if p.variable):
            leaves.append((package.line, f"--prune leaves {package.name}: ${package.variable} names it; take it out of that variable's value by hand"))
        plain = [p.name for p in names if not p.variable]
        if plain:
            why = (
                "taking them out would empty this apt-get install, and its RUN does more than install: remove the command by hand"
                if not _only_apt(install, editable) else "the edit did not read back as intended"
            )
            leaves.append((install.line, f"--prune leaves {' '.join(plain)}: {why}"))
    return leaves


def _end_continuation(lines: list[str], index: int, drop: set[int], escape: str) -> None:
    """Take the continuation off the nearest kept code line above `index`."""
    for above in range(index - 1, -1, -1):
        body = lines[above].rstrip("\r\n")
        stripped = body.strip()
        if above in drop or not stripped or stripped.startswith("#"):
            continue
        if body.rstrip().endswith(escape):
            lines[above] = body.rstrip().removesuffix(escape).rstrip() + lines[above][len(body) :]
        return


def _new_run(lines: list[str], text: str, add: list[str], eol: str) -> list[str]:
    parsed = instructions(text)
    final_stage = max((i for i, ins in enumerate(parsed) if ins.keyword == "FROM"), default=None)
    if final_stage is None:
        return lines
    stage = parsed[final_stage:]
    runs = [ins for ins in stage if ins.keyword == "RUN"]
    after = (runs[-1] if runs else stage[0]).end_line
    if lines and after == len(lines) and not lines[-1].endswith("\n"):  # a lone \r ends no line
        lines[-1] += eol  # the file had no final newline: ours starts on a line of its own
    escape = escape_of(text)  # `\\`, or the backtick of `# escape=``
    packages = "".join(f"        {p} {escape}{eol}" for p in sorted(add))
    block = _NEW_RUN.format(eol=eol, escape=escape, packages=packages)
    return [*lines[:after], block, *lines[after:]]
