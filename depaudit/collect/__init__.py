"""Stage 1: find services and the imports their source files make."""

from depaudit.collect.imports import collect_imports
from depaudit.collect.services import discover_services

__all__ = ["collect_imports", "discover_services"]
