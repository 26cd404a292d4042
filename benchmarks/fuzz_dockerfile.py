"""Fuzz the Dockerfile reader and patcher with generated hostile Dockerfiles (run by hand).

    .venv/bin/python benchmarks/fuzz_dockerfile.py --runs 100000 [--seed N] [--jobs 2]

Each input is a random Dockerfile as people write them (stages, ARG in FROM, continuations,
comments inside them, CRLF / LF mixed, heredocs closed or not, exec-form RUNs, `$VAR` and
`$(...)` lists, subshells, escape directives, no final newline, a continuation at EOF), often
with a few bytes then cut, doubled or swapped. On each, every entry point runs: instructions(),
read_image(), apt_installs(), dockerfile_problems(), patch_dockerfile() (add and prune),
unified_diff(). A crash is an exception from any of them. A failure is a broken promise:
  - a patch with nothing new to add changes nothing;
  - a patch reads back with exactly the intended packages, or leaves the file as it is and
    dockerfile_problems() says why;
  - patching twice is patching once;
  - the lines a patch takes away all belong to the RUN it edits;
  - the patched file reads back as the same instructions, or those and one RUN more.
Prints the runs, crashes and failures, and the first few of each, with a seed to replay them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depaudit.dockerfile.edit import patch_dockerfile, split_lines  # noqa: E402
from depaudit.dockerfile.parse import apt_installs, instructions, read_image  # noqa: E402
from depaudit.dockerfile.problems import dockerfile_problems  # noqa: E402
from depaudit.emit.patch import unified_diff  # noqa: E402

PACKAGES = ["curl", "git", "ffmpeg", "libgl1", "libsm6", "libglib2.0-0", "libsndfile1", "g++", "libstdc++6", "python3-pip"]
SOUP = [
    "FROM ", "RUN ", "ARG ", "ENV ", "apt-get ", "apt ", "install ", "update ", "-y ", "-o ", "--no-install-recommends ",
    "curl ", "git ", "$PKGS ", "$(", ")", "`", "(", "{ ", "}", "&& ", "; ", "| ", "|| ", "\\", "\\\n", "\n", "\r\n", "\r",
    "<<EOF", "<<-EOF", "EOF", "\tEOF", "#", "# escape=`\n", "`\n", "=", "'", '"', " AS ", "base", "${A:-b}", "rm -rf /var/lib/apt/lists/*",
]
FLAGS = ["-y", "-qq", "-qy", "--no-install-recommends", "-o APT::Install-Recommends=false", "--yes", "-q"]


class Gen:
    """A random Dockerfile, line by line, in a random but consistent layout."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng
        self.escape = "`" if rng.random() < 0.05 else "\\"
        self.eol = rng.choice(["\n", "\r\n", "\n", "\n"])

    def pick(self, items: list[str]) -> str:
        return self.r.choice(items)

    def packages(self) -> list[str]:
        names = self.r.sample(PACKAGES, self.r.randint(0, 4))
        if self.r.random() < 0.15:
            names.append(self.pick(["$PKGS", "${EXTRA}", "$(cat /tmp/list)", "`cat list`", "curl=7.81.0-1"]))
        return names

    def flags(self) -> list[str]:
        return self.r.sample(FLAGS, self.r.randint(0, 3))

    def install(self) -> str:
        prefix = self.pick(["", "", "sudo ", "DEBIAN_FRONTEND=noninteractive "])
        tool = self.pick(["apt-get", "apt-get", "apt"])
        return f"{prefix}{tool} install {' '.join(self.flags())}".rstrip()

    def run(self) -> list[str]:
        kind = self.r.random()
        e = self.escape
        if kind < 0.08:
            return [f'RUN ["apt-get", "install", "-y", "{self.pick(PACKAGES)}"]']
        if kind < 0.18:
            word = self.pick(["EOF", "SCRIPT"])
            dash = "-" if self.r.random() < 0.3 else ""
            body = [("\t" if dash else "") + f"{self.install()} {' '.join(self.packages())}", "echo done"]
            closed = [("\t" if dash else "") + word] if self.r.random() < 0.85 else []
            return [f"RUN <<{dash}{word}", *body, *closed]
        update = "apt-get update && " if self.r.random() < 0.7 else ""
        cleanup = " && rm -rf /var/lib/apt/lists/*" if self.r.random() < 0.6 else ""
        packages = self.packages()
        layout = self.r.random()
        if layout < 0.3:  # inline
            line = f"RUN {update}{self.install()} {' '.join(packages)}{cleanup}"
            if self.r.random() < 0.1:
                line = f"RUN ({update}{self.install()} {' '.join(packages)}){cleanup}"
            if self.r.random() < 0.1:
                line += " # a comment"
            return [line]
        indent = self.pick(["    ", "  ", "\t", "        "])
        lines = [f"RUN {update}{self.install()} {e}"]
        for index, package in enumerate(packages):
            if self.r.random() < 0.15:
                lines.append(self.pick([f"{indent}# {package} is needed by x", "", "#"]))
            lines.append(f"{indent}{package} {e}")
        if cleanup:
            lines.append(f"{indent}&& rm -rf /var/lib/apt/lists/*")
        elif lines:
            lines[-1] = lines[-1].removesuffix(f" {e}") if self.r.random() < 0.9 else lines[-1]
        return lines

    def stage(self, final: bool) -> list[str]:
        base = self.pick(["ubuntu:22.04", "nvidia/cuda:${CUDA}-runtime-ubuntu22.04", "${BASE}", "base AS build", "python:3.11"])
        lines = [f"FROM {base}" + (" AS builder" if not final and "AS" not in base else "")]
        for _ in range(self.r.randint(0, 4)):
            kind = self.r.random()
            if kind < 0.55:
                lines += self.run()
            elif kind < 0.7:
                lines.append(self.pick(["ENV A=1 B=2", "ENV LD_LIBRARY_PATH /opt/lib:$LD_LIBRARY_PATH", "ARG X", "WORKDIR /app"]))
            elif kind < 0.8:
                lines.append(self.pick(["COPY . /app", "CMD [\"python\", \"app.py\"]", "ONBUILD RUN apt-get install -y x"]))
            elif kind < 0.9:
                lines.append(self.pick(["# comment", "", "   ", "\t# indented comment"]))
            else:
                lines.append(self.pick(["FROBNICATE x", "RUN make \\", "RUN echo 'apt-get install -y nope'", "RUN true"]))
        return lines

    def soup(self) -> str:
        """Dockerfile words in any order: what no person writes, and the reader must survive."""
        return "".join(self.r.choice(SOUP) for _ in range(self.r.randint(1, 60)))

    def dockerfile(self) -> str:
        if self.r.random() < 0.1:
            return self.soup()
        lines: list[str] = []
        if self.escape == "`":
            lines.append("# escape=`")
        elif self.r.random() < 0.2:
            lines.append("# syntax=docker/dockerfile:1")
        if self.r.random() < 0.4:
            lines.append(self.pick(["ARG CUDA=12.1.1", "ARG BASE=ubuntu:22.04", "ARG BASE"]))
        stages = self.r.choice([1, 1, 1, 2, 3]) if self.r.random() < 0.95 else 0
        for number in range(stages):
            lines += self.stage(final=number == stages - 1)
        eols = [self.eol if self.r.random() < 0.9 else self.pick(["\n", "\r\n", "\r"]) for _ in lines]
        text = "".join(line + eol for line, eol in zip(lines, eols))
        if self.r.random() < 0.2:
            text = text.rstrip("\r\n")  # no final newline
        if self.r.random() < 0.05:
            text += f"RUN apt-get install -y {self.escape}"  # a continuation at the end of the file
        return mutate(self.r, text) if self.r.random() < 0.3 else text


def mutate(rng: random.Random, text: str) -> str:
    """A few characters cut, doubled, swapped for another or for a hostile one."""
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        if not chars:
            break
        at = rng.randrange(len(chars))
        action = rng.random()
        if action < 0.3:
            del chars[at]
        elif action < 0.5:
            chars.insert(at, chars[at])
        elif action < 0.8:
            chars[at] = rng.choice(["\\", "`", "\n", "\r", "#", "(", ")", "$", "&", "|", ";", "<<EOF", "\t", " ", "'", '"'])
        else:
            chars.insert(at, rng.choice(["\x00", "\x0c", "\u2028", "\udcff", "é", "\x85"]))
    return "".join(chars)


@dataclass
class Outcome:
    runs: int = 0
    crashes: int = 0
    failures: int = 0
    examples: list[str] = field(default_factory=list)


def final_names(text: str, *, patchable: bool = False) -> set[str]:
    return {
        p.name
        for i in apt_installs(text)
        if not patchable or (not i.in_heredoc and not i.instruction.heredoc)
        for p in i.packages
    }


def check(text: str, rng: random.Random) -> str | None:
    """None, or what went wrong."""
    instructions(text)
    read_image(text, {"LD_LIBRARY_PATH": "/usr/lib"})
    problems = dockerfile_problems(text)
    existing = final_names(text)
    if patch_dockerfile(text, sorted(existing)) != text:
        return "a patch with nothing new to add changed the file"
    add = rng.sample(PACKAGES, rng.randint(1, 3))
    patched = patch_dockerfile(text, add)
    wanted = set(add) - existing
    if patched == text:
        if wanted and not problems_explain(problems):
            return f"the patch adding {sorted(wanted)} left the file as it was, and no problem says why"
    else:
        if final_names(patched) != existing | wanted or not wanted <= final_names(patched, patchable=True):
            return f"patched to {sorted(final_names(patched))}, wanted {sorted(existing | wanted)}"
        if patch_dockerfile(patched, add) != patched:
            return "patching twice is not patching once"
        if not removed_lines_in_edited_run(text, patched):
            return "the patch took away a line outside the RUN it edits"
        if not same_instructions_but_one_run(text, patched):
            return "the patched file reads back with other instructions than one RUN more at most"
    unified_diff(text, patched, "Dockerfile")
    if existing:
        pruned = patch_dockerfile(text, [], [rng.choice(sorted(existing))])
        if pruned != text and not final_names(pruned) <= existing:
            return "pruning added a package"
    return None


def problems_explain(problems: list[tuple[int, str]]) -> bool:
    return any(
        message.startswith(("depaudit cannot add packages", "no FROM instruction", "heredoc <<"))
        for _, message in problems
    )


def removed_lines_in_edited_run(old: str, new: str) -> bool:
    """Every line outside the old file's RUNs is still there, in order (a subsequence of the new
    lines). Lines are compared without their ends: a last line gains one when ours follows it."""
    runs = [range(i.line, i.end_line + 1) for i in instructions(old) if i.keyword == "RUN"]
    kept = [
        line.rstrip("\r\n")
        for number, line in enumerate(split_lines(old), start=1)
        if not any(number in run for run in runs)
    ]
    position = 0
    for line in split_lines(new):
        if position < len(kept) and line.rstrip("\r\n") == kept[position]:
            position += 1
    return position == len(kept)


def same_instructions_but_one_run(old: str, new: str) -> bool:
    """The keywords in order are the old ones (and as many apt-get installs), or those with one
    RUN more (and one install more). A new RUN that a continuation above swallowed leaves the
    keywords as they were, but its apt-get install lands in that RUN: one install more."""
    before = [i.keyword for i in instructions(old)]
    after = [i.keyword for i in instructions(new)]
    installs = len(apt_installs(new)) - len(apt_installs(old))
    if after == before:
        return installs == 0
    one_more = any(after[:k] + after[k + 1 :] == before for k, word in enumerate(after) if word == "RUN")
    return len(after) == len(before) + 1 and one_more and installs == 1


def fuzz(seed: int, runs: int, report: int = 3) -> Outcome:
    outcome = Outcome()
    for number in range(runs):
        case_seed = seed * 1_000_003 + number
        rng = random.Random(case_seed)
        text = Gen(rng).dockerfile()
        outcome.runs += 1
        try:
            problem = check(text, rng)
        except Exception:  # noqa: BLE001 - counting crashes is the point
            outcome.crashes += 1
            if len(outcome.examples) < report:
                outcome.examples.append(f"CRASH seed={case_seed} {text!r}\n{traceback.format_exc(limit=4)}")
            continue
        if problem is not None:
            outcome.failures += 1
            if len(outcome.examples) < report:
                outcome.examples.append(f"FAIL seed={case_seed} {problem}: {text!r}")
    return outcome


def _job(arguments: tuple[int, int]) -> Outcome:
    return fuzz(*arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--replay", type=int, metavar="CASE_SEED", help="run one case again, by its seed")
    args = parser.parse_args(argv)
    if args.replay is not None:
        rng = random.Random(args.replay)
        text = Gen(rng).dockerfile()
        print(repr(text))
        print(check(text, rng))
        return 0
    started = time.perf_counter()
    shares = [(args.seed * 1000 + job, args.runs // args.jobs + (job < args.runs % args.jobs)) for job in range(args.jobs)]
    run: Callable[[tuple[int, int]], Outcome] = _job
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            outcomes = pool.map(run, shares)
    else:
        outcomes = [run(share) for share in shares]
    total = Outcome(
        sum(o.runs for o in outcomes), sum(o.crashes for o in outcomes), sum(o.failures for o in outcomes),
        [e for o in outcomes for e in o.examples],
    )
    elapsed = time.perf_counter() - started
    for example in total.examples[:6]:
        print(example)
    print(f"runs {total.runs}  crashes {total.crashes}  failures {total.failures}  ({elapsed:.1f} s, {total.runs / elapsed:.0f}/s)")
    return 1 if total.crashes or total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
