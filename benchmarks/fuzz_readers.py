"""Fuzz the readers of user files (run by hand): the fleet config, requirements files, Python
sources and locks.

    .venv/bin/python benchmarks/fuzz_readers.py --runs 100000 [--target config|locks|requirements|sources] [--seed N] [--jobs 2]

Each input is a valid file damaged at random (bytes inserted, deleted, doubled, swapped, cut)
or a random mix of the lines people write. A crash is an exception the reader does not turn into
its own outcome, or a process that dies (a native parser's segfault):
  - config: load_config() gives a FleetConfig or a one-line ConfigError;
  - requirements: read_requirements() gives DeclaredRequirements and findings;
  - sources: the import stage's worker function and the hint reader give results (a file they
    cannot parse is a parse_error with the fallback's imports), within a time bound;
  - locks: read_lock() of a pylock.toml, a uv.lock or a requirements lock gives pins with a name
    and findings with a message; a TOML lock is damaged as bytes, or kept valid TOML with values
    of the wrong type put in (which byte damage seldom makes).
Prints runs, crashes and the slowest input per target, with a seed to replay the first crashes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depaudit.collect.hints import file_hints  # noqa: E402
from depaudit.collect.imports import _parse_source  # noqa: E402
from depaudit.findings import Finding  # noqa: E402
from depaudit.fleet.config import ConfigError, FleetConfig, load_config  # noqa: E402
from depaudit.lock.model import LockRead  # noqa: E402
from depaudit.lock.readers import read_lock  # noqa: E402
from depaudit.python.model import DeclaredRequirement, TargetPython  # noqa: E402
from depaudit.python.requirements import read_requirements  # noqa: E402

CONFIG = """\
distro = "ubuntu-22.04"
paths = ["services"]
family-dockerfiles = ["docker/*/Dockerfile"]
base-image = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
site-packages = ["/opt/venv/lib/python3.11/site-packages"]

[env]
LD_LIBRARY_PATH = "/usr/local/nvidia/lib64"

[families.family-torch]
dockerfile = "docker/family-torch/Dockerfile"
parent = "base-gpu"
gpu = true
env = { CUDA_HOME = "/usr/local/cuda" }

[services.stt]
entry = "services/stt/main.py"
source-roots = ["."]
family = "family-torch"
requirements = ["requirements.txt"]
"""
REQUIREMENT_LINES = [
    "numpy==1.26.4", "torch>=2.1; python_version >= '3.9'", "opencv-python-headless", "requests[socks]~=2.31",
    "-r other.txt", "-c constraints.txt", "-e .", "--index-url https://x/simple", "git+https://github.com/a/b#egg=b",
    "name @ https://x/y.whl", "# comment", "", "pkg==1.0 \\", "    --hash=sha256:" + "0" * 64, "pkg; sys_platform == 'win32'",
    "pkg; bogus_marker == 'x'", "pkg===", "!!!", "-r", "./local.whl", "pkg==1.0 # trailing", "-f ./wheels", "-r requirements.txt",
]
PYLOCK = """\
lock-version = "1.0"
created-by = "fuzz"
default-groups = ["serve"]

[[packages]]
name = "demo"
version = "1.0"
marker = "'serve' in dependency_groups and python_version >= '3.8'"

[[packages.wheels]]
name = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
url = "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" }

[[packages]]
name = "from-git"
vcs = { type = "git", url = "https://git.example/x.git", commit-id = "feed" }

[[packages]]
name = "archived"
version = "2.0"
archive = { url = "https://files.example/archived-2.0-py3-none-any.whl", hashes = { sha256 = "22" } }
"""
UV_LOCK = """\
version = 1

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "demo", marker = "sys_platform == 'linux'" }, { name = "req", extra = ["socks"] }]

[[package]]
name = "demo"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files.example/demo-1.0-py3-none-any.whl", hash = "sha256:11", size = 1 }]

[[package]]
name = "req"
version = "2.0"
source = { git = "https://git.example/req.git?rev=main#feed" }

[package.optional-dependencies]
socks = [{ name = "demo" }]
"""
LOCK_LINES = [
    "demo==1.0 --hash=sha256:" + "1" * 64, "demo @ https://files.example/demo-1.0-py3-none-any.whl#sha256=11",
    "x @ git+https://git.example/x.git@v1", "-e git+https://git.example/e.git#egg=e", "-e ./libs/local", "./libs/other",
    "https://files.example/bare-2.0-py3-none-any.whl", "-r more.txt", "-c constraints.txt", "loose>=1", "w==1 ; sys_platform == 'win32'",
    "t @ https://files.example/t-1.0.tar.gz", "o @ http://127.0.0.1:port/o-1.0-py3-none-any.whl",
]
TOML_VALUES = ["1", '"x"', "[]", "{}", '[1, "a"]', "{ a = 1 }", "true", '"../../etc/passwd"', '"http://[x"', '"sha256:zz"', '[{ name = 3 }]', '"\\u0000"']
SOURCE = '''\
"""A service module."""
from __future__ import annotations
import os, sys
from typing import TYPE_CHECKING
try:
    import numpy as np
except ImportError:
    np = None
if TYPE_CHECKING:
    import pandas
if sys.platform == "win32":
    import winreg
LIB = "libportaudio.so.2"
CANDIDATES = ("libespeak-ng.so.1", "libespeak.so.1")

def load():
    import ctypes, ctypes.util
    for name in CANDIDATES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return ctypes.CDLL(ctypes.util.find_library("sndfile") or LIB)

class Tool:
    @staticmethod
    def run(path: str) -> int:
        import subprocess, importlib
        importlib.import_module("yaml")
        return subprocess.run(["ffmpeg", "-i", path], check=False).returncode

value = f"{os.sep}{len(sys.argv)!r:>4}"
lam = lambda: __import__("json")
'''
SOUP = [b"(", b")", b"[", b"]", b"{", b"}", b"'", b'"', b'"""', b"\\", b"\n", b"\r\n", b"\r", b"\t", b" ", b"    ", b":", b"=",
        b"#", b"\x00", b"\xff", b"\xe9", b"\xef\xbb\xbf", b"import ", b"from ", b" as ", b"try:", b"except", b"def ", b"lambda",
        b"if ", b"else:", b"f'{", b"}'", b"((((((((((", b"))))))))))", b"-", b"not ", b"async ", b"await ", b"@", b"*", b"**",
        b"# coding: latin-1\n", b"# coding: klingon\n", b"[[", b"]]", b"\x7f", b"\udcff".decode("utf-8", "surrogatepass").encode("utf-8", "surrogatepass")]


def mutate(data: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(data))
        roll = rng.random()
        if roll < 0.4:
            data = data[:at] + rng.choice(SOUP) * rng.choice([1, 1, 1, 2, 50]) + data[at:]
        elif roll < 0.6:
            data = data[:at] + data[at + rng.randint(1, 40):]
        elif roll < 0.75:
            end = min(len(data), at + rng.randint(1, 200))
            data = data[:end] + data[at:end] + data[end:]
        elif roll < 0.85:
            data = data[:at]
        elif roll < 0.95:
            other = rng.randint(0, len(data))
            a, b = sorted((at, other))
            data = data[:a] + data[b:] + data[a:b]
        else:
            data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[at:]
    return data


def check_config(data: bytes, folder: Path) -> None:
    path = folder / "depaudit.toml"
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ConfigError as error:
        if not str(error) or "\n" in str(error).strip():
            raise AssertionError(f"a ConfigError of more than one line: {error!r}") from None
        return
    if not isinstance(config, FleetConfig):
        raise AssertionError(f"load_config gave {type(config).__name__}")


def check_requirements(data: bytes, folder: Path) -> None:
    (folder / "requirements.txt").write_bytes(data)
    (folder / "other.txt").write_bytes(data[: len(data) // 2])
    declared, findings = read_requirements([folder / "requirements.txt"], folder, TargetPython())
    if not all(isinstance(d, DeclaredRequirement) and d.key for d in declared):
        raise AssertionError("a declared requirement without a key")
    if not all(isinstance(f, Finding) and f.message for f in findings):
        raise AssertionError("a finding without a message")


def check_source(data: bytes, folder: Path) -> None:
    parsed = _parse_source((data, "svc.pkg"))
    if parsed.fallback and parsed.error is None:
        raise AssertionError("the fallback read the file but no parse error says why")
    if not isinstance(file_hints_or_none(data), list):
        raise AssertionError("file_hints gave no list")


def check_lock(data: bytes, folder: Path) -> None:
    kind = "pylock.toml" if data.startswith(b"lock-version") else "uv.lock" if data.startswith(b"version") else "requirements.txt"
    (folder / kind).write_bytes(data)
    (folder / "more.txt").write_bytes(data[: len(data) // 2])
    read = read_lock(folder / kind, TargetPython(python_version="3.11", python_full_version="3.11.0"))
    if not isinstance(read, LockRead):
        raise AssertionError(f"read_lock gave {type(read).__name__}")
    if not all(pin.name and isinstance(pin.version, str) for pin in read.pins):
        raise AssertionError("a pin without a name")
    if not all(isinstance(f, Finding) and f.message for f in read.findings):
        raise AssertionError("a finding without a message")


def _lock(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        lines = [rng.choice(LOCK_LINES) for _ in range(rng.randint(0, 10))]
        return mutate("\n".join(lines).encode() + b"\n", rng) if rng.random() < 0.5 else "\n".join(lines).encode()
    text = PYLOCK if roll < 0.65 else UV_LOCK
    if rng.random() < 0.4:
        return mutate(text.encode(), rng)
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):  # still TOML: a value of another type, or a line gone
        at = rng.randrange(len(lines))
        if " = " in lines[at] and not lines[at].startswith("["):
            lines[at] = lines[at].split(" = ", 1)[0] + " = " + rng.choice(TOML_VALUES)
        elif not lines[at].startswith(("lock-version", "version")):
            del lines[at]
    return "\n".join(lines).encode() + b"\n"


def file_hints_or_none(data: bytes) -> object:
    try:
        return file_hints(data)
    except Exception:  # a wheel's unparsable file: the caller passes it over (see native/hints.py)
        return []


def generate(target: str, rng: random.Random) -> bytes:
    if target == "config":
        return mutate(CONFIG.encode(), rng)
    if target == "requirements":
        lines = [rng.choice(REQUIREMENT_LINES).encode() for _ in range(rng.randint(0, 12))]
        return mutate(b"\n".join(lines) + b"\n", rng) if rng.random() < 0.7 else b"\n".join(lines)
    if target == "locks":
        return _lock(rng)
    return mutate(SOURCE.encode(), rng)


CHECKS: dict[str, Callable[[bytes, Path], None]] = {
    "config": check_config, "locks": check_lock, "requirements": check_requirements, "sources": check_source,
}


@dataclass
class Outcome:
    runs: int = 0
    crashes: int = 0
    slowest: float = 0.0
    examples: list[str] = field(default_factory=list)


def _job(share: tuple[str, int, int]) -> Outcome:
    target, seed, runs = share
    outcome = Outcome()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        for run in range(runs):
            data = generate(target, rng)
            started = time.perf_counter()
            try:
                CHECKS[target](data, Path(folder))
            except Exception:
                outcome.crashes += 1
                if len(outcome.examples) < 3:
                    outcome.examples.append(f"{target} seed {seed} run {run}: {data[:200]!r}\n{traceback.format_exc(limit=4)}")
            outcome.slowest = max(outcome.slowest, time.perf_counter() - started)
            outcome.runs += 1
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="inputs per target")
    parser.add_argument("--target", choices=sorted(CHECKS), action="append", help="default: all four")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    failed = False
    for target in args.target or sorted(CHECKS):
        started = time.perf_counter()
        shares = [(target, args.seed * 1000 + job, args.runs // args.jobs + (job < args.runs % args.jobs)) for job in range(args.jobs)]
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            outcomes = pool.map(_job, shares)  # a worker that dies takes the run down: a crash too
        runs, crashes = sum(o.runs for o in outcomes), sum(o.crashes for o in outcomes)
        slowest = max(o.slowest for o in outcomes)
        for example in [e for o in outcomes for e in o.examples][:3]:
            print(example)
        elapsed = time.perf_counter() - started
        print(f"{target}: runs {runs}  crashes {crashes}  slowest input {slowest * 1000:.0f} ms  ({elapsed:.1f} s, {runs / elapsed:.0f}/s)")
        failed |= crashes > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
