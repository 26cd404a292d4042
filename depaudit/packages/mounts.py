"""Which of the NVIDIA driver's files the NVIDIA container runtime mounts into one image: its
NVIDIA_DRIVER_CAPABILITIES, read as the NVIDIA container toolkit reads it, and where to change it.

The toolkit (cmd/nvidia-container-runtime-hook/container_config.go getDriverCapabilities): a
comma-separated list; `all` is every capability; unset or empty is the default (utility,compute),
except that an unset variable on a legacy image (CUDA_VERSION without NVIDIA_REQUIRE_CUDA) gets every
capability. The runtime mounts driver files only into a GPU container (NVIDIA_VISIBLE_DEVICES set);
`docker run --gpus` and Kubernetes device plugins set that variable at run time (moby
daemon/nvidia_linux.go setNvidiaGPUs), so a service that reaches a driver file is taken to run with
GPUs, whether or not its image sets NVIDIA_VISIBLE_DEVICES itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from depaudit.packages.driver import DriverFiles

VARIABLE = "NVIDIA_DRIVER_CAPABILITIES"


@dataclass(frozen=True)
class CapabilitySource:
    """Where the image's NVIDIA_DRIVER_CAPABILITIES comes from, and where a person changes it."""

    label: str  # "docker/family-x/Dockerfile:4", "--env", "depaudit.toml", "the base image nvidia/cuda:…"
    line: str | None = None  # file:line of the Dockerfile ENV line that sets it: the line to change
    dockerfile: str | None = None  # the family Dockerfile to add an ENV line to, when no line of ours sets it


@dataclass(frozen=True)
class DriverMounts:
    """The capabilities an image asks for, and the driver files' capabilities mounted for them."""

    asked: tuple[str, ...]  # in the variable's order; ("all",) for every one
    mounted: frozenset[str]
    why: str  # how `asked` was decided, for the evidence chain
    source: CapabilitySource | None = None  # None: nothing sets it (the toolkit's default applies)

    def mounts(self, capability: str) -> bool:
        return capability in self.mounted

    def missing(self, capability: str) -> str:
        """Why a file of `capability` is not mounted, and the Dockerfile line that would mount it."""
        value = ",".join([*self.asked, capability])
        fix = f"ENV {VARIABLE}={value}"
        source = self.source
        if source is not None and source.line is not None:
            where = f"change {source.line} to {fix}"
        elif source is not None and source.dockerfile is not None:
            where = f"add {fix} to {source.dockerfile}"
        else:
            where = f"add {fix} to the image's Dockerfile"
        return (
            f"the NVIDIA driver ships it, but the image's {VARIABLE} ({self.why}) does not ask for "
            f"{capability}: {where}"
        )

    def mounted_text(self, capability: str) -> str:
        return f"the NVIDIA container runtime mounts it from the host driver: {VARIABLE} {self.why}"


def driver_mounts(
    env: Mapping[str, str], files: DriverFiles, source: CapabilitySource | None = None
) -> DriverMounts:
    """What the toolkit mounts for an image whose merged environment is `env`. `source` says where
    the variable's value comes from (None when no input sets it); its `dockerfile` is where to add it."""
    value = env.get(VARIABLE)
    known = set(files.mounts)
    if value is None and env.get("CUDA_VERSION") and not env.get("NVIDIA_REQUIRE_CUDA"):
        return DriverMounts(("all",), frozenset(known), "unset on a legacy CUDA image: every capability", source)
    asked = tuple(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))
    if not asked:
        shown = ",".join(files.default)
        why = f"unset: the toolkit's default {shown}" if value is None else f"empty: the toolkit's default {shown}"
        return DriverMounts(files.default, files.mounted(frozenset(files.default)), why, source)
    why = f"{value}, set by {source.label}" if source is not None else value
    if "all" in asked:
        return DriverMounts(asked, frozenset(known), why, source)
    return DriverMounts(asked, files.mounted(frozenset(asked)), why, source)

