"""Random-mutation fuzzing of the ELF reader (depaudit.native.elf.read_elf) and the dlopen
evidence reader (depaudit.native.dlopen.dlopen_evidence). Run by hand, never by CI:

    .venv/bin/python benchmarks/fuzz_elf.py --runs 100000
    .venv/bin/python benchmarks/fuzz_elf.py --runs 20000 --seed 7 --save /tmp/crashes

Seeds are real gcc-built objects (a library with DT_RPATH and DT_NEEDED, one with DT_RUNPATH, an
extension module with a .note.dlopen note and soname strings) plus a hand-made 32-bit and a
big-endian one. Each run mutates one seed (bit flips, overwritten fields, cuts, spliced and
duplicated chunks, biased toward the headers and the dynamic segment the reader trusts) and
reads it. The documented outcomes are an ElfInfo or an ElfError from read_elf, and a list from
dlopen_evidence; anything else (another exception, or a read slower than --hang seconds) is a
crash, counted and, with --save, written out for replay.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from elftools.elf.elffile import ELFFile  # noqa: E402

from depaudit.native.dlopen import dlopen_evidence  # noqa: E402
from depaudit.native.elf import ElfError, read_elf  # noqa: E402
from depaudit.native.model import ElfInfo  # noqa: E402
from depaudit.native.store import _read as read_in_worker  # noqa: E402

_NOTE_SOURCE = r"""
struct note { unsigned namesz, descsz, type; char name[4]; char desc[64]; };
__attribute__((used, section(".note.dlopen"), aligned(4)))
static const struct note dlopen_note = {4, 64, 0x407c0c0a, "FDO",
    "[{\"soname\":[\"libfuzzdl.so.1\"],\"priority\":\"required\"}]"};
const char *probe = "libavutil.so.58";
int fuzz_ext(void) { return 0; }
"""
# Values that break parsers: zero, one, all ones, sign bits, sizes around the file's.
_INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 63, (1 << 64) - 1)


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    hot: tuple[tuple[int, int], ...]  # (start, end) byte ranges the reader trusts


@dataclass
class Tally:
    runs: int = 0
    parsed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0


class _Hang(Exception):
    pass


def _gcc(out: Path, source: str, *args: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *args], check=True, capture_output=True)
    return out


def _crafted(bits: int, little: bool, machine: int, needed: list[str]) -> bytes:
    """One PT_LOAD mapping the file and one PT_DYNAMIC, as ld.so reads them."""
    order = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    strings = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    offsets = [1 + sum(len(n) + 1 for n in needed[:i]) for i in range(len(needed))]
    strtab = ehsize + 2 * phentsize
    dyn_at = (strtab + len(strings) + 7) & ~7
    entries = [(1, o) for o in offsets] + [(5, strtab), (10, len(strings)), (0, 0)]
    dyn = b"".join(struct.pack(order + ("qQ" if bits == 64 else "iI"), t, v) for t, v in entries)
    size = dyn_at + len(dyn)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    if bits == 64:
        head = struct.pack(order + "16sHHIQQQIHHHHHH", ident, 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 64, 0, 0)
        phdrs = struct.pack(order + "IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)
        phdrs += struct.pack(order + "IIQQQQQQ", 2, 6, dyn_at, dyn_at, dyn_at, len(dyn), len(dyn), 8)
    else:
        head = struct.pack(order + "16sHHIIIIIHHHHHH", ident, 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 40, 0, 0)
        phdrs = struct.pack(order + "IIIIIIII", 1, 0, 0, 0, size, size, 4, 0x1000)
        phdrs += struct.pack(order + "IIIIIIII", 2, dyn_at, dyn_at, dyn_at, len(dyn), len(dyn), 6, 8)
    body = head + phdrs + strings
    return body + bytes(dyn_at - len(body)) + dyn


def _hot(path: Path) -> tuple[tuple[int, int], ...]:
    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        ranges = [(0, elf["e_ehsize"]), (elf["e_phoff"], elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"])]
        for segment in elf.iter_segments():
            if segment["p_type"] in ("PT_DYNAMIC", "PT_NOTE"):
                ranges.append((segment["p_offset"], segment["p_offset"] + segment["p_filesz"]))
        dynstr = elf.get_section_by_name(".dynstr")
        if dynstr is not None:
            ranges.append((dynstr["sh_offset"], dynstr["sh_offset"] + dynstr["sh_size"]))
    return tuple(r for r in ranges if r[1] > r[0])


def build_seeds(folder: Path) -> list[Seed]:
    seeds: list[Seed] = []
    if shutil.which("gcc"):
        dep = _gcc(folder / "libfuzzdep.so.2", "int dep(void){return 1;}", "-Wl,-soname,libfuzzdep.so.2")
        plain = _gcc(
            folder / "libfuzz.so.1", "int f(void){return 0;}", "-Wl,-soname,libfuzz.so.1",
            "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib:/opt/x", "-Wl,--no-as-needed", str(dep),
        )
        runpath = _gcc(
            folder / "libfuzzrun.so.1", "int g(void){return 0;}", "-Wl,-soname,libfuzzrun.so.1",
            "-Wl,--enable-new-dtags", "-Wl,-rpath,${ORIGIN}", "-Wl,--no-as-needed", str(dep),
        )
        ext = _gcc(folder / "_fuzz.cpython-311-x86_64-linux-gnu.so", _NOTE_SOURCE)
        for path in (plain, runpath, ext):
            seeds.append(Seed(path.name, path.read_bytes(), _hot(path)))
    for name, data in (
        ("crafted-64.so", _crafted(64, True, 62, ["libc.so.6", "libm.so.6"])),
        ("crafted-32.so", _crafted(32, True, 3, ["libc.so.6"])),
        ("crafted-be.so", _crafted(64, False, 21, ["libc.so.6"])),
    ):
        path = folder / name
        path.write_bytes(data)
        seeds.append(Seed(name, data, _hot(path)))
    return seeds


def mutate(seed: Seed, rng: random.Random) -> bytes:
    data = bytearray(seed.data)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        if not data:
            break
        if rng.random() < 0.6:
            start, end = rng.choice(seed.hot)
            offset = rng.randrange(min(start, len(data) - 1), max(min(end, len(data)), min(start, len(data) - 1) + 1))
        else:
            offset = rng.randrange(len(data))
        op = rng.randrange(7)
        if op == 0:
            data[offset] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[offset] = rng.randrange(256)
        elif op == 2:
            width = rng.choice((2, 4, 8))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            packed = value.to_bytes(width, rng.choice(("little", "big")))
            data[offset : offset + width] = packed[: len(data) - offset]
        elif op == 3:
            del data[offset:]  # a cut
        elif op == 4:
            length = rng.randrange(1, 256)
            del data[offset : offset + length]
        elif op == 5:
            length = rng.randrange(1, 256)
            source = rng.randrange(len(data))
            data[offset:offset] = data[source : source + length]  # duplicate a chunk elsewhere
        else:
            data[offset : offset + 16] = rng.randbytes(16)[: len(data) - offset]
    return bytes(data)


def _outcome(result: ElfInfo | ElfError) -> object:
    return (result.kind, result.message) if isinstance(result, ElfError) else result


def run_one(path: Path, tally: Tally, hang: float) -> str | None:
    """None when the outcome is a documented one; else a crash signature."""
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, hang)
    try:
        try:
            result: ElfInfo | ElfError = read_elf(path)
        except ElfError as error:
            result = error
        evidence = dlopen_evidence(path, strings=True)
        if not isinstance(evidence, list):
            return f"dlopen_evidence returned {type(evidence).__name__}"
        # What a worker runs: one open file, one header parse for both readers. Same answers.
        combined, together = read_in_worker((str(path), True))
        if _outcome(combined) != _outcome(result):
            return "the worker's read differs from read_elf's"
        if isinstance(result, ElfInfo) and together != dlopen_evidence(path, strings=True, needed=frozenset(result.needed)):
            return "the worker's dlopen evidence differs from dlopen_evidence's"
    except _Hang:
        return f"hang: over {hang} s"
    except BaseException as error:  # noqa: BLE001 - exactly what the fuzzer looks for
        if isinstance(error, KeyboardInterrupt):
            raise
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(error)[:120]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        tally.slowest = max(tally.slowest, time.perf_counter() - started)
    if isinstance(result, ElfError):
        tally.errors[result.kind.value] += 1
    else:
        tally.parsed += 1
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to try (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed, for a reproducible run")
    parser.add_argument("--hang", type=float, default=2.0, help="seconds one input may take before it counts as a crash")
    parser.add_argument("--save", type=Path, help="write each crashing input into this folder")
    args = parser.parse_args()

    def on_alarm(*_: object) -> None:
        raise _Hang

    signal.signal(signal.SIGALRM, on_alarm)
    rng = random.Random(args.seed)
    tally = Tally()
    scratch = Path(tempfile.mkdtemp(prefix="fuzz-elf-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        seeds = build_seeds(scratch)
        target = scratch / "input.so"
        print(f"seeds: {', '.join(s.name for s in seeds)}")
        started = time.perf_counter()
        for run in range(args.runs):
            seed = rng.choice(seeds)
            data = mutate(seed, rng)
            target.write_bytes(data)
            crash = run_one(target, tally, args.hang)
            tally.runs += 1
            if crash is not None:
                tally.crashes[crash] += 1
                if args.save is not None:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"crash-{run:07d}-{seed.name}").write_bytes(data)
            if (run + 1) % 10_000 == 0:
                print(f"  {run + 1} runs, {sum(tally.crashes.values())} crashes, {time.perf_counter() - started:.1f} s", flush=True)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"runs: {tally.runs}")
    print(f"crashes: {sum(tally.crashes.values())} ({len(tally.crashes)} distinct)")
    for signature, count in tally.crashes.most_common(20):
        print(f"  {count:6d}  {signature}")
    print(f"parsed: {tally.parsed}; reported: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items())))
    print(f"wall time: {wall:.1f} s ({tally.runs / wall:.0f} inputs/s); slowest input: {tally.slowest * 1000:.1f} ms")
    return 1 if tally.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
