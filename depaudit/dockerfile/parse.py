"""What a Dockerfile says about the image it builds: its base and its environment.

Enough of the format for the FROM / ARG / ENV chain: continuation lines, comments, CRLF,
parser directives, ARG defaults before FROM, multi-stage builds (the last stage is the image),
`ENV K=V ...` and the legacy `ENV K V`, `$VAR` / `${VAR}` / `${VAR:-default}` substitution.

Each `apt-get install` of the final stage is also checked for apt hygiene, the way hadolint
(DL3009, DL3014, DL3015) and a careful reviewer would: `-y` (a build cannot answer a
prompt), `apt-get update` earlier in the same RUN (a cached update layer goes stale),
`rm -rf /var/lib/apt/lists/*` later in the same RUN (or a cache/tmpfs mount over them), and
`--no-install-recommends` (or `-o APT::Install-Recommends=false`, or an apt.conf line written
earlier in the stage). `apt-get clean` empties /var/cache/apt only: it does not remove the lists.

Pure functions of a Dockerfile's text: nothing here reads a file.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping

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
    line: int  # where the token stands (for one from a variable: where the `$VAR` stands)
    variable: str = ""  # the ARG / ENV variable whose value named it: read, never edited


@dataclass(frozen=True)
class AptInstall:
    """One `apt-get install` (or `apt install`) command inside a RUN instruction."""

    instruction: Instruction
    packages: tuple[AptPackage, ...]
    flags: tuple[str, ...]  # -y, --no-install-recommends, "-o APT::Install-Recommends=false", ...
    in_heredoc: bool = False  # read from a heredoc body: counted, never patched
    line: int = 0  # 1-based line where the command (`apt-get`, or its sudo / VAR= prefix) stands
    # Offsets into instruction.arguments (into the heredoc body when in_heredoc): where the
    # command starts, where its `install` word ends, where its last word (package or flag) ends.
    start: int = 0
    verb_end: int = 0
    end: int = 0
    missing: tuple[str, ...] = ()  # apt hygiene it lacks, a subset of HYGIENE's keys, in its order
    unknown: tuple[str, ...] = ()  # words naming packages that cannot be known (`$PKGS` with no value)


@dataclass
class DockerfileImage:
    base: str  # the final stage's FROM, substituted; a stage name is followed to its base
    env: dict[str, str] = field(default_factory=dict)  # ENV of the final stage, including stages it builds on
    unresolved: str = ""  # the FROM's image word, when a variable in it has no value: no base is known
    line: int = 0  # where that FROM stands
    # Variable → the line of the ENV instruction that last set it in this file (its stages included)
    env_lines: dict[str, int] = field(default_factory=dict, compare=False)


HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def instructions(text: str) -> list[Instruction]:
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    escape = "\\"
    heredocs: list[tuple[str, bool]] = []  # terminators still to meet, and whether tabs are stripped
    body: list[str] = []  # the heredoc lines of the last instruction so far
    raw = text.replace("\r\n", "\n").split("\n")
    for number, line_text in enumerate(raw, start=1):
        if heredocs:
            # A heredoc body belongs to the instruction above, up to its terminator line.
            word, strip_tabs = heredocs[0]
            if (line_text.lstrip("\t") if strip_tabs else line_text) == word:
                heredocs.pop(0)
            else:
                body.append(line_text + "\n")
            if not heredocs or number == len(raw):  # built once: a long body costs no more than its length
                last = result[-1]
                result[-1] = Instruction(last.keyword, last.arguments, last.line, number, "".join(body))
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
        opens = HEREDOC.finditer(arguments) if takes_heredocs(keyword, arguments) else ()
        heredocs = [(m.group(3), m.group(1) == "-") for m in opens]
        body = []
    if pending:  # a continuation at the end of the file
        joined = " ".join(part.strip() for part in pending)
        keyword, _, arguments = joined.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), start, len(raw)))
    return result


def takes_heredocs(keyword: str, arguments: str) -> bool:
    """BuildKit reads heredocs in the shell form of RUN, COPY and ADD only: `<<EOF` inside an
    exec-form JSON array (`CMD ["sh", "-c", "cat <<EOF"]`) is a string, not a heredoc."""
    if keyword.upper() not in ("RUN", "COPY", "ADD"):
        return False
    return not re.sub(r"^(?:--\S+\s+)*", "", arguments.strip()).startswith("[")


# apt options whose value is the next word: `-o APT::Install-Recommends=false install ...`
_APT_VALUE_OPTIONS = frozenset(
    "-o -c -t -a --option --config-file --target-release --default-release --host-architecture".split()
)
# An option's value never starts with `-`, and the repetition never gives back what it took
# (possessive): `-a -a … -a installx` has one reading, not 2^n for the engine to try.
_APT_OPTIONS = (
    r"(?:(?:-[octa]|--(?:option|config-file|target-release|default-release|host-architecture))\s+[^\s;&|-][^\s;&|]*\s+"
    r"|-[^\s;&|]+\s+)*+"
)
# A command position: the start of the RUN (after its --mount/--network flags), after a shell
# operator, at the start of a subshell or a group, or after a compound-command keyword.
_APT_INSTALL = re.compile(
    r"(?:^(?:--\S+\s+)*|[;&|]\s*|(?<!\$)\(\s*|(?<![$\w])\{\s+|(?<![\w-])(?:then|do|else)\s+)"
    r"(?P<command>(?:sudo\s+)?(?:DEBIAN_FRONTEND=\S+\s+)?apt(?:-get)?\s+"
    r"(?P<options>" + _APT_OPTIONS + r")install(?![\w.+-]))"
    r"(?P<rest>[^;&|]*)"
)
_APT_UPDATE = re.compile(r"(?<![\w./-])apt(?:-get)?\s+" + _APT_OPTIONS + r"update(?![\w.+-])")
# rm of the lists folder or of its content; `.../lists/partial` alone is not enough.
_LISTS_REMOVED = re.compile(
    r"(?<![\w./-])rm\s+(?:[^;&|]*\s)?[\"']?/var/lib/apt/lists(?:/[\"']?\*?)?[\"']?(?=$|[\s;&|)])"
)
# BuildKit keeps the lists out of the layer when a cache or tmpfs is mounted over them.
_LISTS_MOUNTED = re.compile(
    r"--mount=(?=\S*type=(?:cache|tmpfs))\S*(?:target|dst|destination)=/var/lib/apt(?:/lists)?/?(?=[,\s]|$)"
)
# apt.conf syntax (`APT::Install-Recommends "false";`), as written to /etc/apt/apt.conf.d by a RUN.
_CONF_NO_RECOMMENDS = re.compile(r"Install-Recommends\s+\\?[\"']?(?:0|false|no|off)\b", re.IGNORECASE)
_CONF_ASSUME_YES = re.compile(r"Assume-Yes\s+\\?[\"']?(?:1|true|yes|on)\b", re.IGNORECASE)

# What each hygiene gap costs and how to fix it; problems.dockerfile_problems() reports them in this order.
HYGIENE = {
    "yes": "apt-get install without -y: a docker build cannot answer its prompt; add -y",
    "update": (
        "apt-get install without apt-get update before it in the same RUN: the package lists come from a stale"
        " cached layer or are missing; put `apt-get update &&` in front of it"
    ),
    "lists": (
        "apt-get install leaves the package lists in the layer:"
        " end this RUN with `&& rm -rf /var/lib/apt/lists/*` (apt-get clean does not remove them)"
    ),
    "recommends": (
        "apt-get install without --no-install-recommends: the image also gets every package these recommend;"
        " add --no-install-recommends, then list any recommended package a service needs"
    ),
}


@dataclass
class _Configured:
    """apt.conf settings written by the stage's earlier RUNs (`echo 'APT::Get::Assume-Yes "true";' > ...`)."""

    assume_yes: bool = False
    no_recommends: bool = False

    def read(self, shell: str) -> None:
        self.assume_yes = self.assume_yes or bool(_CONF_ASSUME_YES.search(shell))
        self.no_recommends = self.no_recommends or bool(_CONF_NO_RECOMMENDS.search(shell))


@dataclass
class _Words:
    """What follows `apt-get [options] install`: flags, package names with their offsets, and
    where the command's last word ends."""

    flags: list[str] = field(default_factory=list)
    names: list[tuple[str, int, str]] = field(default_factory=list)  # (name, offset, the variable it came from)
    end: int = 0
    unknown: list[str] = field(default_factory=list)


# A word that is one variable: `$PKGS`, `${PKGS}`, `"${PKGS:-a b}"`.
_ONE_VARIABLE = re.compile(r'"?\$(?:(\w+)|\{(\w+)(?::?-([^}]*))?\})"?')


def _expanded(word: str, variables: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(variable, the words of its value) for a word that is one variable whose value is known;
    None for any other word the shell computes."""
    found = _ONE_VARIABLE.fullmatch(word)
    if found is None:
        return None
    name = found.group(1) or found.group(2)
    value = variables.get(name) or found.group(3)
    if value is None:
        return None
    try:
        return name, shlex.split(value)
    except ValueError:
        return None


def _command_words(match: re.Match[str], variables: Mapping[str, str]) -> _Words:
    words = [  # (word, offset in source): the options before `install`, then what follows it
        (word.group(), match.start(group) + word.start())
        for group in ("options", "rest")
        for word in re.finditer(r"\S+", match.group(group))
    ]
    result = _Words(end=match.end("command"))
    depth, quoted = 0, False  # inside $( ... ) or ` ... `: the words are a command's, not packages
    index = 0
    while index < len(words):
        word, offset = words[index]
        if word.startswith("#") and not depth and not quoted:
            break  # a shell comment: the rest of the line is not the command's
        substituted = depth > 0 or quoted or "(" in word or "`" in word
        if (depth > 0 or quoted) and result.unknown:
            result.unknown[-1] += f" {word}"  # the rest of a substitution the list holds
        elif "$(" in word or "`" in word:
            result.unknown.append(word)  # `$(cat packages.txt)`: a list the shell computes
        depth += word.count("(") - word.count(")")
        quoted ^= word.count("`") % 2 == 1
        if depth < 0:
            # `(apt-get install -y curl)`: the subshell ends here, and the command with it.
            word = word[: word.index(")")]
            if word and not word.startswith(("-", "$")):
                result.names.append((word.split("=", 1)[0], offset, ""))
            result.end = max(result.end, offset + len(word)) if word else result.end
            break
        pinned_name, pinned, _ = word.partition("=")
        if not substituted and pinned and "$" in word and "$" not in pinned_name and not word.startswith("-"):
            result.names.append((pinned_name, offset, ""))  # `pkg=${VERSION}`: only the pin is computed
        elif not substituted and "$" in word and not word.startswith("-"):
            expanded = _expanded(word, variables)
            if expanded is None:
                result.unknown.append(word)  # a word the shell computes: no package name we can read
            else:
                for value in expanded[1]:
                    if value.startswith("-"):
                        result.flags.append(value)
                    else:
                        result.names.append((value.split("=", 1)[0], offset, expanded[0]))
        elif substituted or word == "\\":
            pass  # a word the shell computes: no package name we can read
        elif word in _APT_VALUE_OPTIONS and index + 1 < len(words):
            result.flags.append(f"{word} {words[index + 1][0]}")  # the option and its value stay one flag
            word, offset = words[index + 1]
            index += 1
        elif word.startswith("-"):
            result.flags.append(word)
        else:
            result.names.append((word.split("=", 1)[0], offset, ""))
        result.end = max(result.end, offset + len(word))
        index += 1
    return result


@dataclass(frozen=True)
class _Shell:
    """Where in one RUN's shell text the hygiene evidence stands, found in one pass: a RUN of
    thousands of installs costs no more than its length."""

    update_end: int  # end of its first `apt-get update`, -1: none
    yes_conf_end: int  # end of its first apt.conf Assume-Yes line, -1: none
    recommends_conf_end: int  # end of its first apt.conf Install-Recommends=false line, -1: none
    lists_start: int  # start of its last `rm -rf /var/lib/apt/lists`, -1: none

    @classmethod
    def of(cls, source: str) -> _Shell:
        def first_end(pattern: re.Pattern[str]) -> int:
            found = pattern.search(source)
            return found.end() if found else -1

        last, found = -1, _LISTS_REMOVED.search(source)
        while found:  # the last start, matches overlapping or not
            last, found = found.start(), _LISTS_REMOVED.search(source, found.start() + 1)
        return cls(first_end(_APT_UPDATE), first_end(_CONF_ASSUME_YES), first_end(_CONF_NO_RECOMMENDS), last)


@dataclass(frozen=True)
class BuildContext:
    """What a Dockerfile's variables take from outside it: the environment of the image it is
    built FROM, and the build-args of its build."""

    inherited: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)


def apt_installs(text: str, context: BuildContext | None = None) -> list[AptInstall]:
    """Every `apt-get install` list of the last stage's RUN instructions (the image's own). A
    `$VAR` in a list is read from the variables the RUN sees: ARG defaults (a build-arg wins),
    ENV, and the environment of the image it is built FROM."""
    found: list[AptInstall] = []
    raw_lines = text.replace("\r\n", "\n").split("\n")
    escape = _escape_of(raw_lines)
    configured = _Configured()  # by the stage's RUNs so far
    parsed = instructions(text)
    last = _last_stage(parsed)
    scope = _Scope(context.inherited, context.build_args) if context is not None else _Scope()
    for instruction in parsed[: len(parsed) - len(last)]:
        scope.read(instruction)
    for instruction in last:
        scope.read(instruction)
        if instruction.keyword != "RUN" or instruction.arguments.lstrip().startswith("["):
            continue  # exec-form RUN: not a shell command line
        columns = _columns(instruction, raw_lines, escape)
        run_flags = re.match(r"(?:--\S+\s+)*", instruction.arguments)  # always matches, maybe empty
        mounted = bool(run_flags and _LISTS_MOUNTED.search(run_flags.group()))
        lines_of = _TokenLines(instruction, raw_lines)
        for source, in_heredoc in ((instruction.arguments, False), (instruction.heredoc.replace("\\\n", " "), True)):
            shell = _Shell.of(source)
            for match in _APT_INSTALL.finditer(source.replace("\n", ";")):
                words = _command_words(match, scope.variables)
                if columns is not None and not in_heredoc:
                    packages = tuple(AptPackage(name, columns[offset][0], via) for name, offset, via in words.names)
                    line = columns[match.start("command")][0]
                else:
                    packages = tuple(
                        AptPackage(name, lines_of.line(f"${via}" if via else name), via) for name, _, via in words.names
                    )
                    line = instruction.line
                start = match.start("command")
                missing = _missing(tuple(words.flags), configured, shell, source, start, words.end, mounted)
                found.append(
                    AptInstall(
                        instruction, packages, tuple(words.flags), in_heredoc, line=line, start=start,
                        verb_end=match.end("command"), end=words.end, missing=missing, unknown=tuple(words.unknown),
                    )
                )
        configured.read(instruction.arguments)
        configured.read(instruction.heredoc)
    return found


def _missing(
    flags: tuple[str, ...], configured: _Configured, shell: _Shell, source: str, start: int, end: int, mounted: bool
) -> tuple[str, ...]:
    """The hygiene an install lacks: evidence before its command (`start`) or after its last word (`end`)."""
    gaps = []
    yes = _assumes_yes(flags) or configured.assume_yes or -1 < shell.yes_conf_end <= start
    if not yes and not _piped_from_yes(source, start):
        gaps.append("yes")
    if not -1 < shell.update_end <= start:
        gaps.append("update")
    if not mounted and shell.lists_start < end:
        gaps.append("lists")
    if not _skips_recommends(flags) and not configured.no_recommends and not -1 < shell.recommends_conf_end <= start:
        gaps.append("recommends")
    return tuple(gaps)


def _piped_from_yes(source: str, start: int) -> bool:
    """`yes | apt-get install ...`: the text before the command (at `start`) ends in a pipe from `yes`."""
    at = _skip_spaces_back(source, start)
    if at == 0 or source[at - 1] != "|":
        return False
    at = _skip_spaces_back(source, at - 1)
    return source.endswith("yes", 0, at) and not re.match(r"\w", source[max(at - 4, 0) : at - 3])


def _skip_spaces_back(source: str, at: int) -> int:
    while at > 0 and source[at - 1].isspace():
        at -= 1
    return at


class _TokenLines:
    """The first line of an instruction where a word stands (outside a comment), for the words
    whose offsets cannot be mapped to columns (heredoc bodies): each line is read once."""

    _RUN = re.compile(r"[\w.+-]+")

    def __init__(self, instruction: Instruction, raw_lines: list[str]) -> None:
        self._instruction, self._raw = instruction, raw_lines
        self._first: dict[str, int] | None = None

    def line(self, token: str) -> int:
        if not self._RUN.fullmatch(token):
            return _line_of(token, self._instruction, self._raw)  # a quoted or odd word: looked for as it is
        if self._first is None:
            self._first = {}
            for number in self._instruction.lines:
                if number - 1 < len(self._raw):
                    for word in self._RUN.findall(self._raw[number - 1].split("#", 1)[0]):
                        self._first.setdefault(word, number)
        return self._first.get(token, self._instruction.line)


def _assumes_yes(flags: tuple[str, ...]) -> bool:
    for flag in flags:
        if flag in ("-y", "--yes", "--assume-yes"):
            return True
        # short clusters: -qy, -yqq; quiet level 2 implies -y (apt-get(8))
        if re.fullmatch(r"-[a-zA-Z]+", flag) and ("y" in flag or flag.count("q") >= 2):
            return True
        if re.fullmatch(r"(?:-q|--quiet)=(?:[2-9]|\d{2,})", flag):
            return True
        if re.fullmatch(r"--(?:yes|assume-yes)=(?:1|true|yes|on)", flag, re.IGNORECASE):
            return True
        if re.fullmatch(r"(?:-o|--option)[\s=]?\S*::Assume-Yes=(?:1|true|yes|on)", flag, re.IGNORECASE):
            return True
    return False


def _skips_recommends(flags: tuple[str, ...]) -> bool:
    for flag in flags:
        if flag == "--no-install-recommends":
            return True
        if re.fullmatch(r"--install-recommends=(?:0|false|no|off)", flag, re.IGNORECASE):
            return True
        if re.fullmatch(r"(?:-o|--option)[\s=]?\S*Install-Recommends=(?:0|false|no|off)", flag, re.IGNORECASE):
            return True
    return False


def _escape_of(raw_lines: list[str]) -> str:
    """The escape character, as instructions() reads it from the directives above the first instruction."""
    escape = "\\"
    for line in raw_lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        directive = re.match(r"#\s*escape\s*=\s*(\S)", stripped)
        if directive:
            escape = directive.group(1)
    return escape


def _columns(instruction: Instruction, raw_lines: list[str], escape: str) -> list[tuple[int, int]] | None:
    """(line, column) in the file of every character of the instruction's arguments, joined the way
    instructions() joins continuation lines; None when the two readings disagree."""
    joined = ""
    where: list[tuple[int, int]] = []
    for number in instruction.lines:
        if number - 1 >= len(raw_lines):
            break
        line = raw_lines[number - 1].rstrip()
        stripped = line.strip()
        if where and (not stripped or stripped.startswith("#")):
            continue
        continued = line.endswith(escape)
        body = line[: -len(escape)] if continued else line
        lead = len(body) - len(body.lstrip())
        part = body.strip()
        if where:
            joined += " "
            where.append((number, lead))
        joined += part
        where.extend((number, lead + i) for i in range(len(part)))
        if not continued:
            break
    keyword, _, rest = joined.partition(" ")
    offset = len(keyword) + 1 + len(rest) - len(rest.lstrip())
    arguments = instruction.arguments
    if joined[offset : offset + len(arguments)] != arguments:
        return None
    return where[offset : offset + len(arguments)]


def install_columns(install: AptInstall, text: str) -> list[tuple[int, int]] | None:
    """(line, column) of each character of the install's RUN arguments; None for a heredoc body."""
    if install.in_heredoc:
        return None
    raw_lines = text.replace("\r\n", "\n").split("\n")
    return _columns(install.instruction, raw_lines, _escape_of(raw_lines))


def escape_of(text: str) -> str:
    return _escape_of(text.replace("\r\n", "\n").split("\n"))


# The instructions of the Dockerfile reference; anything else is a mistake.
KEYWORDS = frozenset(
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD "
    "STOPSIGNAL HEALTHCHECK SHELL".split()
)


def _last_stage(all_instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, instruction in enumerate(all_instructions) if instruction.keyword == "FROM"]
    return all_instructions[starts[-1]:] if starts else all_instructions


def _line_of(token: str, instruction: Instruction, raw_lines: list[str]) -> int:
    pattern = re.compile(rf"(?<![\w.+-]){re.escape(token)}(?![\w.+-])")
    for number in instruction.lines:
        if number - 1 < len(raw_lines) and pattern.search(raw_lines[number - 1].split("#", 1)[0]):
            return number
    return instruction.line


VALUE_CAP = 64 * 1024  # characters of one expanded value: `ARG A1=${A0}${A0}` doubling 1,000 times stays small


def substitute(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = variables.get(name)
        return value if value else (default or "")

    return _VARIABLE.sub(replace, text)[:VALUE_CAP]


def read_image(text: str, inherited: Mapping[str, str] | None = None) -> DockerfileImage | None:
    """The final stage's base and environment; None when there is no FROM.

    `inherited` is the environment of the image it is built FROM (so that
    `ENV LD_LIBRARY_PATH=/x:$LD_LIBRARY_PATH` extends it).
    """
    return image_of(instructions(text), inherited)


def image_of(
    parsed: Iterable[Instruction], inherited: Mapping[str, str] | None = None, build_args: Mapping[str, str] | None = None
) -> DockerfileImage | None:
    """read_image() of instructions already parsed: a Dockerfile read once is not parsed again for
    each image built on it. A build-arg wins over an ARG default, in FROM as in RUN."""
    scope = _Scope(inherited, build_args)
    for instruction in parsed:
        scope.read(instruction)
    return scope.current


class _Scope:
    """The variables a Dockerfile's instructions see, read in order: ARG defaults (a build-arg
    wins over one), each stage's ENV on top of the image it starts from."""

    def __init__(self, inherited: Mapping[str, str] | None = None, build_args: Mapping[str, str] | None = None) -> None:
        self.inherited = dict(inherited or {})
        self.build_args = dict(build_args or {})
        self.global_args: dict[str, str] = {}
        self.stages: dict[str, DockerfileImage] = {}
        self.current: DockerfileImage | None = None
        self.variables: dict[str, str] = {}

    def read(self, instruction: Instruction) -> None:
        if instruction.keyword == "FROM":
            raw = [w for w in instruction.arguments.split() if not w.startswith("--")]  # --platform=...
            words = [w for w in substitute(instruction.arguments, self.global_args).split() if not w.startswith("--")]
            reference = words[0] if words else ""
            parent = self.stages.get(reference.lower())
            unknown = bool(raw) and any(
                not self.global_args.get(m.group(1) or m.group(3)) and m.group(2) is None for m in _VARIABLE.finditer(raw[0])
            )
            self.current = DockerfileImage(
                parent.base if parent else ("" if unknown else reference),
                dict(parent.env) if parent else dict(self.inherited),
                unresolved=raw[0] if unknown and parent is None else "",
                line=instruction.line,
                env_lines=dict(parent.env_lines) if parent else {},
            )
            if len(words) >= 3 and words[1].lower() == "as":
                self.stages[words[2].lower()] = self.current
            self.variables = {**self.global_args, **self.current.env}
        elif instruction.keyword == "ARG":
            for name, value in _pairs(instruction.arguments, self.variables, allow_bare=True):
                value = self.build_args.get(name, value)
                if self.current is None:
                    self.global_args[name] = value
                # A bare `ARG X` in a stage brings the global default back into scope.
                self.variables[name] = value or self.global_args.get(name, "")
        elif instruction.keyword == "ENV" and self.current is not None:
            for name, value in _pairs(instruction.arguments, self.variables, allow_bare=False):
                self.current.env[name] = value
                self.current.env_lines[name] = instruction.line
                self.variables[name] = value


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
