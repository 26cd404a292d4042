"""Command line: parse arguments, run the scan, render. Heavy imports stay inside commands."""

from __future__ import annotations

import argparse
import gc
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import depaudit
from depaudit.machine import MachineError
from depaudit.options import FAIL_ON, FORMATS, InputError

if TYPE_CHECKING:
    from depaudit.dockerfile.model import Dockerfile
    from depaudit.fleet.config import FleetConfig
    from depaudit.consulted import Stamps
    from depaudit.memo import Entry
    from depaudit.options import ScanOptions
    from depaudit.report import ScanReport
    from depaudit.terminal import StderrProgress

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depaudit",
        description="Which apt packages must each image install so that every service runs?",
    )
    parser.add_argument("--version", action="version", version=f"depaudit {depaudit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    scan = commands.add_parser("scan", help="audit services against a Python environment and a base image")
    _scan_arguments(scan)
    # Options the config can set too default to None here: a flag given wins over the config.
    scan.add_argument(
        "--format",
        choices=FORMATS,
        help="report format (default: table; patch: the Dockerfile diff; bindep: each family's bindep.txt)",
    )
    scan.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        # A required value: `--output-dir services` once took the services folder for the output.
        help="also write every format to DIR (e.g. reports), with bindep/ and patches/ per family",
    )
    scan.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        help="exit 1 on a missing required package (default), also on unused/redundant/build-only ones, or never",
    )
    scan.add_argument("--write", action="store_true", default=None, help="apply the Dockerfile changes, atomically")
    scan.add_argument("--prune", action="store_true", default=None, help="also remove unused and redundant packages")
    scan.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE instead of stdout")

    why = commands.add_parser("why", help="every chain of evidence that leads to a package, library, program or import")
    why.add_argument("name", metavar="NAME", help="an apt package, a soname, a program, a distribution or an import")
    _scan_arguments(why)

    index = commands.add_parser("index", help="build a soname/program → package index from a distro's Contents file")
    index.add_argument("--distro", required=True, help="the distro the files describe, e.g. debian-12")
    index.add_argument(
        "--contents",
        type=Path,
        required=True,
        metavar="FILE",
        help="Contents-<arch>: plain, gzip, xz or lz4 (zstd, bzip2), told by its bytes, not its name",
    )
    index.add_argument(
        "--packages",
        type=Path,
        metavar="FILE",
        help="a Packages file (plain, gzip, xz or lz4) or a dpkg status file: Depends, and transitional packages",
    )
    index.add_argument("--cache-dir", type=Path, metavar="DIR", help="where to keep it (default: the user cache)")

    lookup = commands.add_parser("lookup", help="which package provides a soname or a program, and why")
    lookup.add_argument("name", help="a soname (libGL.so.1) or a program (ffmpeg)")
    lookup.add_argument("--distro", default="ubuntu-22.04", help="target distro (default: %(default)s)")
    lookup.add_argument("--cache-dir", type=Path, metavar="DIR", help="where `depaudit index` keeps its indexes")
    lookup.add_argument("--cuda-version", metavar="X.Y", help="complete NVIDIA's versioned CUDA package names")
    lookup.add_argument(
        "--base-image", metavar="NAME", help="take the CUDA version from this known base image's profile"
    )
    in_image = lookup.add_mutually_exclusive_group()
    in_image.add_argument("--rootfs", type=Path, metavar="DIR", help="also ask this unpacked image's dpkg database")
    in_image.add_argument("--image", type=Path, metavar="PATH", help="also ask this image's (docker save / OCI) dpkg database")
    lookup.add_argument(
        "--guess", action="store_true", help="when nothing knows it, apply Debian's library naming policy (marked guessed)"
    )
    return parser


def _scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="a folder whose subfolders are services, or one service folder (default: the config's paths)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the fleet config: depaudit.toml, or a pyproject.toml with [tool.depaudit] "
        "(default: either one in the current folder)",
    )
    environment = parser.add_mutually_exclusive_group()
    environment.add_argument(
        "--site-packages",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="the image's Python environment: a site-packages folder or a venv root (repeatable; default: the "
        "config's, the image's own, else $VIRTUAL_ENV, ./.venv, then the interpreter running depaudit)",
    )
    environment.add_argument(
        "--python",
        type=Path,
        metavar="PATH",
        help="the image's Python environment given by its interpreter (a venv's bin/python): read, never run",
    )
    environment.add_argument(
        "--lock",
        type=Path,
        metavar="FILE",
        help="audit the wheels a lock pins instead of an installed environment: a pylock.toml, a uv.lock or a fully "
        "pinned requirements.txt; each wheel is read in place, never installed",
    )
    parser.add_argument(
        "--find-links",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder of wheels the lock's pins are taken from (repeatable)",
    )
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="a simple index (PEP 503) the lock's wheels come from when no folder holds them (downloaded once into the cache)",
    )
    parser.add_argument(
        "--python-version",
        metavar="X.Y",
        help="the image's Python, whose wheels of the lock are audited (default: the config's, else that of a base "
        "image given as files, else the distro's python3)",
    )
    parser.add_argument(
        "--distro",
        help="target distro whose packages are named (default: the base image's, else ubuntu-22.04)",
    )
    base = parser.add_mutually_exclusive_group()
    base.add_argument(
        "--rootfs",
        type=Path,
        metavar="DIR",
        help="the base image as an unpacked filesystem: searched like ld.so would, read without Docker",
    )
    base.add_argument(
        "--image",
        type=Path,
        metavar="PATH",
        help="the base image as a `docker save` tarball or an OCI layout (folder or tar), read without Docker",
    )
    base.add_argument(
        "--base-image",
        metavar="NAME",
        help="a known base image described by an embedded profile, e.g. nvidia/cuda:12.1.1-runtime-ubuntu22.04",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable of the image (LD_LIBRARY_PATH), overriding the image's own",
    )
    parser.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="where indexes and per-file results are kept (default: the user cache)"
    )
    parser.add_argument("--no-cache", action="store_true", default=None, help="neither read nor write per-file results or the whole-scan memo")
    parser.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="worker processes for parsing and ELF reading (default: the usable cores)"
    )
    parser.add_argument(
        "--hoist", action="store_true", default=None, help="move a package several families need into their nearest common parent family"
    )
    parser.add_argument(
        "--no-module-reach",
        dest="module_reach",
        action="store_false",
        default=None,
        help="do not follow the wheels' own imports: every extension module and top-level hint of a "
        "reached wheel counts as surely as the wheel (coarser)",
    )
    _output_arguments(parser)


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    """How much the command says besides its report, and in what colours."""
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-q", "--quiet", action="store_true", default=None,
        help="print only the verdict (a machine format is printed whole); stderr carries only errors",
    )
    talk.add_argument(
        "-v", "--verbose", action="store_true", default=None, help="on stderr, each stage as it finishes: its counts and wall time"
    )
    parser.add_argument(
        "--no-progress", action="store_true", default=None, help="no status line on stderr (shown on a terminal when a scan runs past 1 s)"
    )
    parser.add_argument(
        "--no-color", action="store_true", default=None, help="no colour or style, on stdout or stderr (as NO_COLOR=1; FORCE_COLOR=1 forces them)"
    )


def run() -> int:
    """The process's entry (the `depaudit` script, `python -m depaudit`): `main`, after which the
    process ends. What the scan built is frozen out of the interpreter's final collection, which
    would otherwise walk it all (~70 ms of a warm monorepo scan); callers of `main` in a live
    process (tests) keep their memory collectable.

    A crash is exit 3, never 1: a CI gate must not read a bug of depaudit as findings. However
    the run ends (a result, an error, exit 3, Ctrl-C, SIGTERM), its scratch folders are removed;
    a killed run's (SIGKILL) are removed by the next run."""
    from depaudit.scratch import release_all, remove_stale_scratch
    from depaudit.termination import Terminated, install, terminated

    code = EXIT_FINDINGS  # the report was cut short: the verdict never reached the reader
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # a file named with bytes that are no UTF-8
    previous = install()
    ending = False  # terminated: the process ends as soon as its folders are removed
    try:
        remove_stale_scratch()
        code = main()
        sys.stdout.flush()
        if terminated():  # the handler's exception was lost where Python only reports one (a fork hook)
            raise Terminated()
    except BrokenPipeError:
        # `depaudit why … | head`: the reader has gone, and what it read is all it wanted. No
        # traceback; stdout goes to /dev/null so that the interpreter's last flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return code
    except KeyboardInterrupt:
        print("depaudit: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("depaudit: terminated (SIGTERM)", file=sys.stderr)
        code = 128 + signal.SIGTERM
        ending = True
    except Exception as error:  # noqa: BLE001 - the last resort: every other path returns a code
        return _internal_error(error)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup itself is not cut short: it takes ms
        release_all()
        signal.signal(signal.SIGTERM, previous)  # a caller in a live process (tests) gets its own back
    if ending:
        # Not through the interpreter's exit: it joins the pool's feeder thread, which may block
        # for ever writing to workers the signal ended.
        sys.stderr.flush()
        os._exit(code)
    gc.freeze()
    return code


def _internal_error(error: Exception) -> int:
    """One line on stderr; the traceback in a log under the cache folder (on stderr when that
    cannot be written)."""
    import time
    import traceback

    from depaudit.packages.index import default_cache_dir

    text = "".join(traceback.format_exception(error))
    where = default_cache_dir() / "crashes" / f"depaudit-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(f"depaudit {depaudit.__version__}\n{' '.join(sys.argv)}\n\n{text}", encoding="utf-8", errors="backslashreplace")
        shown = f"the traceback is in {where}"
    except OSError:
        shown = "the traceback follows"
        sys.stderr.write(text)
    message = " ".join(str(error).split())[:300]  # one line, whatever the exception says
    print(f"depaudit: internal error: {type(error).__name__}: {message} (a bug in depaudit, not a finding; {shown})", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    # A scan allocates millions of short-lived objects and few cycles: the default thresholds
    # ran ~15 full collections per cold scan (~0.2 s). Workers inherit this when they fork.
    gc.set_threshold(50_000, 20, 1000)
    args = build_parser().parse_args(argv)
    command = {"scan": _scan, "why": _why, "index": _index, "lookup": _lookup}[args.command]
    try:
        return command(args)
    except InputError as error:
        print(f"depaudit: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except MachineError as error:  # a full disk is no finding on the input, nor a bug of depaudit
        print(f"depaudit: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> ScanReport:
    report, entry = _scanned(args)
    if entry is not None:
        entry.save()
        return entry.report  # type: ignore[no-any-return]
    assert report is not None
    return report


def _scanned(args: argparse.Namespace) -> tuple[ScanReport | None, Entry | None]:
    """The scan's report, or its memo entry (recalled, or made now and not yet saved: the
    caller adds its renderings), or both."""
    from depaudit.options import ScanOptions

    config = _config_file(args.config, bool(args.paths))
    loaded = _load_config(config)  # read once for both: a 50-service config costs ~15 ms a read
    _apply_config_settings(args, loaded)
    _lock_options_need_a_lock(args, loaded)
    if args.python_version is not None and not re.fullmatch(r"3\.\d+", args.python_version):
        raise InputError(f"--python-version takes X.Y (e.g. 3.11), not {args.python_version!r}")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs takes a number of processes, 1 or more, not {args.jobs}")
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env takes KEY=VALUE, not {item!r}")
        env[key] = value
    options = ScanOptions(
        paths=tuple(args.paths),
        site_packages=tuple(args.site_packages),
        distro=args.distro,
        rootfs=args.rootfs,
        image=args.image,
        base_image=args.base_image,
        env=env,
        cache_dir=args.cache_dir,
        hoist=bool(args.hoist),
        config=config,
        use_cache=not args.no_cache,
        processes=args.jobs,
        module_reach=args.module_reach is not False,
        python=args.python,
        lock=args.lock,
        python_version=args.python_version,
        find_links=tuple(args.find_links),
        index_url=args.index_url,
    )
    if not options.use_cache:
        return _run_scan(args, options), None
    # The whole-scan memo: a report whose every input is as it was is given back, not made again.
    from depaudit import consulted, memo
    from depaudit.paths import default_cache_dir

    cache_dir = options.cache_dir or default_cache_dir()
    key = memo.memo_key(options)
    entry = memo.recall(cache_dir, key, _after_edit)
    if isinstance(entry, memo.Entry):
        if args.verbose:
            print(f"depaudit: {entry.said}", file=sys.stderr)
        return None, entry
    missed = (entry or memo.why_missed(cache_dir, key)) if args.verbose else ""
    with consulted.recording() as record:
        memo.note_own_code()
        report = _run_scan(args, options)
    made = memo.remember(cache_dir, key, record, report)
    if args.verbose:
        print(f"depaudit: {missed}; {made if isinstance(made, str) else made.said}", file=sys.stderr)
    return report, None if isinstance(made, str) else made


def _after_edit(stamps: Stamps, changed: list[int], facts: dict[str, bytes]) -> tuple[Stamps, list[str], bool] | str:
    """memo_edit's verdict on service files edited since a memo was made, imported only then."""
    from depaudit.memo_edit import restamped_after_edit

    return restamped_after_edit(stamps, changed, facts)


def _run_scan(args: argparse.Namespace, options: ScanOptions) -> ScanReport:
    from depaudit.scan import run_scan

    progress = _progress(args)
    if progress is None:
        return run_scan(options)
    with progress:  # the status line is gone before anything else is written, error or report
        return run_scan(options, progress)


def _progress(args: argparse.Namespace) -> StderrProgress | None:
    """What the scan reports to stderr: None when nothing is to be shown (then it counts nothing)."""
    from depaudit.terminal import StderrProgress, make_console, progress_delay, wants_status_line

    live = not (args.quiet or args.no_progress) and wants_status_line(os.environ)
    if not (live or args.verbose):
        return None
    console = make_console(_colour(args), stderr=True)
    return StderrProgress(console, verbose=args.verbose, live=live, delay=progress_delay(os.environ))


def _colour(args: argparse.Namespace) -> bool | None:
    from depaudit.terminal import colour_choice

    return colour_choice(args.no_color, os.environ)


def _config_file(given: Path | None, have_paths: bool) -> Path | None:
    from depaudit.fleet.config import ConfigError, find_config
    if given is not None:
        if not given.is_file():
            raise InputError(f"no such config file: {given}")
        return given
    try:
        found = find_config(Path.cwd())
    except ConfigError as error:
        raise InputError(str(error)) from error
    if found is None and not have_paths:
        raise InputError("no PATH given and no depaudit.toml (or [tool.depaudit] in pyproject.toml) here")
    return found


def _load_config(config: Path | None) -> FleetConfig | None:
    if config is None:
        return None
    from depaudit.fleet.config import ConfigError, load_config
    try:
        return load_config(config)
    except ConfigError as error:
        raise InputError(str(error)) from error


def _lock_options_need_a_lock(args: argparse.Namespace, fleet: FleetConfig | None) -> None:
    """--python-version, --find-links and --index-url (and their config keys) choose a lock's
    wheels: given with no lock anywhere, nothing would read them, and the scan would look as if
    it had. A usage error naming the option instead."""
    if args.lock is not None:
        return
    if fleet is not None:
        if fleet.lock is not None or any(family.lock is not None for family in fleet.families.values()):
            return
    for flag, value in (("--python-version", args.python_version), ("--find-links", args.find_links), ("--index-url", args.index_url)):
        if value:
            raise InputError(f"{flag} is for the wheels of a lock, and no lock is given (--lock, or `lock` in the config or a family)")
    if fleet is not None:
        from depaudit.fleet.config import lock_option_unused

        unused = lock_option_unused(fleet)
        if unused is not None:
            raise InputError(unused)


def _apply_config_settings(args: argparse.Namespace, fleet: FleetConfig | None) -> None:
    """The config's settings for the options the command line left unset, then the defaults."""
    settings: dict[str, object] = fleet.settings.given() if fleet is not None else {}
    for key, flag in (("cache", "no_cache"), ("progress", "no_progress"), ("color", "no_color")):
        if key in settings:
            settings[flag] = not settings.pop(key)
    if args.quiet or args.verbose:  # one of the two given: the config's other is not wanted with it
        settings.pop("quiet", None)
        settings.pop("verbose", None)
    defaults = {
        "format": "table", "fail_on": "missing", "write": False, "prune": False, "quiet": False, "verbose": False,
        "no_progress": False, "no_color": False,
    }
    for name in (*settings, *defaults):
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, settings.get(name, defaults.get(name)))


def _scan(args: argparse.Namespace) -> int:
    scanned, entry = _scanned(args)
    to_file = args.output is not None
    kind = _pure_rendering(args)
    if entry is not None and kind is not None and args.fail_on in entry.verdicts:
        # The memo's own rendering: the report need not even be unpickled; to a file, its bytes
        # as kept (none where the text needs the writer's escapes).
        data = entry.data(kind) if to_file else None
        text = entry.text(kind) if data is None else None
        if data is not None or text is not None:
            entry.save()
            if to_file:
                _write_files({args.output: data if data is not None else text or ""})
            else:
                sys.stdout.write(text or "")
            return EXIT_FINDINGS if entry.verdicts[args.fail_on] else EXIT_OK
    report = entry.report if scanned is None and entry is not None else scanned
    assert report is not None
    code = _scan_report(args, report, kind, entry)
    if entry is not None:
        entry.save()
    return code


def _pure_rendering(args: argparse.Namespace) -> str | None:
    """The name under which the memo keeps this run's rendering, when it depends on the report
    alone: not SARIF or a patch (paths relative to the repository found from here), not the
    table on a terminal (its width, colours), not with --write (the report as patched) or
    --output-dir (many files), nor -q's verdict."""
    if args.write or args.output_dir is not None or (args.quiet and args.format == "table" and args.output is None):
        return None
    if args.format in ("json", "markdown", "bindep"):
        return args.format
    return "table-file" if args.format == "table" and args.output is not None else None


def _scan_report(args: argparse.Namespace, report: ScanReport, kind: str | None, entry: Entry | None) -> int:
    patches: list[tuple[Path, str, str]] = []  # (Dockerfile, new text, family)
    if args.write:
        # The reports show the Dockerfiles as they will be written (what is left to change)…
        report, patches = _planned_patches(report, prune=args.prune)
    to_file = args.output is not None
    if args.quiet and args.format == "table" and not to_file:
        text = None  # the verdict alone, printed last
    else:
        text = _render(report, args.format, to_file=to_file, prune=args.prune, colour=_colour(args))
    files: dict[Path, str] = {}
    if args.output is not None:
        files[args.output] = text or ""
    if args.output_dir is not None:
        files.update({args.output_dir / name: body for name, body in _output_dir_files(report, prune=args.prune).items()})
    # … and are written first, each whole or not at all: a run that cannot write its report
    # patches nothing.
    _write_files(files)
    for path, new, family in patches:
        _write_one(path, new, errors="surrogateescape")  # a Dockerfile: byte-identical outside our lines
        if not args.quiet:
            print(f"depaudit: patched {path} (family {family})", file=sys.stderr)
    if text is None:
        from depaudit.emit.table import render_verdict
        from depaudit.terminal import make_console

        render_verdict(report, make_console(_colour(args)))
    elif not to_file and text:
        sys.stdout.write(text)
    if entry is not None and not args.write:
        if kind is not None and text is not None:
            entry.keep_text(kind, text)
        entry.keep_verdicts({fail_on: _fails(report, fail_on) for fail_on in FAIL_ON})
    return EXIT_FINDINGS if _fails(report, args.fail_on) else EXIT_OK


def _fails(report: ScanReport, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    if fail_on == "unused" and any(f.unused or f.redundant or f.build_only for f in report.families):
        return True
    return report.failing


def _output_dir_files(report: ScanReport, *, prune: bool) -> dict[str, str]:
    from depaudit.emit.bindep import render_bindep
    files = {f"report.{ext}": _render(report, fmt, to_file=True, prune=prune) for fmt, ext in
             (("json", "json"), ("markdown", "md"), ("sarif", "sarif"), ("table", "txt"))}
    for family in report.families:
        files[f"bindep/{family.name}.txt"] = render_bindep(family)
        patch = _render_patches(report, prune=prune, only=family.name)
        if patch:
            files[f"patches/{family.name}.patch"] = patch
    return files


def _write_files(files: dict[Path, str] | dict[Path, str | bytes]) -> None:
    """Reports: each file whole or not at all. A name that is not UTF-8 (a file named with other
    bytes) is written as its escape, never crashes the writer."""
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror}") from error
        _write_one(path, text, errors="backslashreplace")


def _write_one(path: Path, text: str | bytes, *, errors: str) -> None:
    from depaudit.atomic import write_atomic
    try:
        write_atomic(path, text, errors=errors)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from error


def _planned_patches(report: ScanReport, *, prune: bool) -> tuple[ScanReport, list[tuple[Path, str, str]]]:
    """Each family's patched Dockerfile, not yet written, and the report holding the Dockerfiles
    as they will be: a patch rendered from it shows what is left to change, not what was done,
    as it did when the files were read again."""
    from dataclasses import replace

    from depaudit.emit.patch import family_patches
    written: dict[str, Dockerfile] = {}  # family → its Dockerfile as it will be written
    patches = []
    for family, dockerfile, _old, new in family_patches(report.families, prune=prune):
        patches.append((dockerfile.path, new, family.name))
        written[family.name] = replace(dockerfile, text=new)
    families = tuple(replace(f, source=written[f.name]) if f.name in written else f for f in report.families)
    return replace(report, families=families), patches


def _why(args: argparse.Namespace) -> int:
    from depaudit.emit.why import chains_to

    lines = chains_to(_run(args), args.name)
    if not lines:
        print(f"nothing in the scan leads to {args.name}")
        return EXIT_FINDINGS
    print("\n".join(lines))
    return EXIT_OK


def _index(args: argparse.Namespace) -> int:
    from depaudit.packages.index import build_index, save_index
    for given in filter(None, (args.contents, args.packages)):
        if not given.is_file():
            raise InputError(f"not a file: {given}")
    try:
        index = build_index(args.distro, args.contents, args.packages)
        path = save_index(index, args.cache_dir)
    except (OSError, EOFError, ValueError) as error:
        raise InputError(f"cannot build the index: {error}") from error
    print(
        f"{index.distro}: {len(index.sonames)} sonames, {len(index.executables)} programs, "
        f"{len(index.depends)} packages with Depends, from {index.source} → {path}"
    )
    return EXIT_OK


def _lookup(args: argparse.Namespace) -> int:
    from depaudit.packages.index import load_index
    from depaudit.packages.lookup import lookup, render_answer
    from depaudit.packages.profiles import load_profile
    from depaudit.packages.rules import RulesError, load_rules
    cuda_version = args.cuda_version
    if cuda_version is not None and not (len(parts := cuda_version.split(".")) >= 2 and all(map(str.isdigit, parts))):
        raise InputError(f"--cuda-version takes X.Y, e.g. 12.1, not {cuda_version!r}")
    try:
        rules = load_rules(args.distro)
        profile = load_profile(args.base_image) if args.base_image else None
    except RulesError as error:
        raise InputError(str(error)) from error
    if profile is not None:
        if profile.distro != args.distro:
            raise InputError(f"{profile.image} is a {profile.distro} image: give --distro {profile.distro}")
        cuda_version = cuda_version or profile.env.get("CUDA_VERSION")
    answers = lookup(
        args.name, rules, load_index(args.distro, args.cache_dir), guess=args.guess, cuda_version=cuda_version
    )
    if args.rootfs or args.image:
        from depaudit.image.model import ImageFormatError
        from depaudit.image.open import open_image
        from depaudit.packages.lookup import lookup_in_image

        given = args.rootfs or args.image
        if not given.exists():
            raise InputError(f"no such image: {given}")
        try:
            answers = lookup_in_image(args.name, open_image(given.resolve())) + answers
        except ImageFormatError as error:
            raise InputError(str(error)) from error
    if not answers:
        print(f"{args.name}: no package known on {args.distro} (build an index: depaudit index --help)")
        return EXIT_FINDINGS
    print("\n".join(render_answer(args.name, args.distro, answer) for answer in answers))
    return EXIT_OK


def _render_patches(report: ScanReport, *, prune: bool, only: str | None = None) -> str:
    from depaudit.emit.patch import diff_path, family_patches, unified_diff

    changes = family_patches(report.families, prune=prune)
    return "".join(
        unified_diff(old, new, diff_path(dockerfile.path)) for f, dockerfile, old, new in changes if only in (None, f.name)
    )


def _render(report: ScanReport, fmt: str, *, to_file: bool, prune: bool = False, colour: bool | None = None) -> str:
    if fmt == "patch":
        return _render_patches(report, prune=prune)
    if fmt == "markdown":
        from depaudit.emit.markdown import render_markdown

        return render_markdown(report)
    if fmt == "sarif":
        from depaudit.emit.sarif import render_sarif

        return render_sarif(report)
    if fmt == "bindep":
        from depaudit.emit.bindep import render_bindep

        return "".join(render_bindep(family) for family in report.families)
    if fmt == "json":
        from depaudit.emit.json_report import dumps

        return dumps(report)
    from depaudit.emit.table import render_plain_text, render_table

    if to_file:
        return render_plain_text(report)
    from depaudit.terminal import make_console

    # On a terminal rich colours the table; piped, or with --no-color / NO_COLOR, it prints plain text.
    render_table(report, make_console(colour))
    return ""
