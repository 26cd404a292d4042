"""Command line: parse arguments, run the scan, render. Heavy imports stay inside commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from depaudit.report import ScanReport

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depaudit",
        description="Which apt packages must each image install so that every service runs?",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    scan = commands.add_parser("scan", help="audit services against a Python environment")
    scan.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a folder whose subfolders are services, or one service folder",
    )
    scan.add_argument(
        "--site-packages",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="the image's Python environment (repeatable; default: this interpreter's site-packages)",
    )
    scan.add_argument(
        "--distro",
        help="target distro whose packages are named (default: the base image's, else ubuntu-22.04)",
    )
    base = scan.add_mutually_exclusive_group()
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
    scan.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable of the image (LD_LIBRARY_PATH), overriding the image's own",
    )
    scan.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    scan.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE instead of stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from depaudit.scan import InputError

    args = build_parser().parse_args(argv)
    try:
        return _scan(args)
    except InputError as error:
        print(f"depaudit: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _scan(args: argparse.Namespace) -> int:
    from depaudit.scan import InputError, ScanOptions, run_scan

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
    )
    report = run_scan(options)
    text = _render(report, args.format, to_file=args.output is not None)
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write {args.output}: {error.strerror}") from error
    elif text:
        sys.stdout.write(text)
    return EXIT_FINDINGS if report.failing else EXIT_OK


def _render(report: ScanReport, fmt: str, *, to_file: bool) -> str:
    if fmt == "json":
        from depaudit.emit.json_report import dumps

        return dumps(report)
    from depaudit.emit.table import render_plain_text, render_table

    if to_file:
        return render_plain_text(report)
    from rich.console import Console

    # On a terminal rich colours the table; piped or with NO_COLOR it prints plain text.
    console = Console(no_color=bool(os.environ.get("NO_COLOR")) or None)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # rich's 80-column default for pipes folds every chain
    render_table(report, console)
    return ""
