"""Stage 1, collect: a service's own source → every import it makes.

Takes a `Service` (a folder, or an entry script and the local modules it reaches) and gives
`ServiceImports`: each import with its file, line and context (guarded, lazy, dynamic,
type-checking, local or third-party), the service's ELF files, and findings for files it could
not read or parse. It reads only the service's files; it knows nothing of wheels or images.
`hints.py` reads the native hints of one source file (ctypes, subprocess, ...); the native
stage runs it over the service's files and the reached wheels'.
"""

from depaudit.collect.imports import collect_imports
from depaudit.collect.services import discover_services

__all__ = ["collect_imports", "discover_services"]
