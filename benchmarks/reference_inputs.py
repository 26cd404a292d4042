"""The reference inputs of benchmarks/compare.py, built once under ~/.cache/depaudit-bench.

- gpu-venv: a real CUDA site-packages (torch + torchvision + opencv + the nvidia-* wheels).
- tools-venv: the comparison tools that come from PyPI (auditwheel, ruff, deptry).
- monorepo: the sources of a few large pure-Python projects side by side, 14 entry scripts
  (agents/agent_NN.py) importing them and the GPU wheels, a family Dockerfile and a
  depaudit.toml naming gpu-venv's site-packages.

Each is built in place and marked complete last, so an interrupted build is redone.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

COMPLETE = ".complete"
# pip on Python 3.11 takes torch and torchvision from this machine's disk; the nvidia-* wheels
# they require come from the index.
GPU_PACKAGES = ("torch==2.14.1", "torchvision==0.29.1", "opencv-python==5.0.0.93")
TOOL_PACKAGES = ("auditwheel==6.8.2", "ruff==0.17.6", "deptry==0.25.1")
BASE_IMAGE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"


@dataclass(frozen=True)
class Sdist:
    name: str
    version: str
    package: str  # the importable package's folder inside the sdist


# Large pure-Python projects that the GPU site-packages does not hold, so that every import of
# them is local to the monorepo: 885 + 861 + 343 = 2,089 .py files, tests included.
SDISTS = (
    Sdist("django", "5.2.19", "django"),
    Sdist("twisted", "26.10.0", "src/twisted"),
    Sdist("pygments", "2.21.0", "pygments"),
)


@dataclass(frozen=True)
class Agent:
    summary: str
    imports: str  # the module's import block, as written
    lazy: str = ""  # imports made inside main()


AGENTS = (
    Agent(
        "Detect objects in camera frames.",
        """
        import cv2
        import numpy as np
        import torch
        from torchvision.models import detection

        from django.http import JsonResponse
        from twisted.internet import reactor
    """,
    ),
    Agent(
        "Classify product photos.",
        """
        import numpy as np
        import torch
        from torchvision import transforms
        from torchvision.models import resnet50

        from django.db.models import Q
        from django.utils.text import slugify
    """,
    ),
    Agent(
        "Blur faces in uploaded videos.",
        """
        import cv2
        import numpy as np

        from twisted.internet import defer, task
        from twisted.logger import Logger
    """,
        lazy="import torch",
    ),
    Agent(
        "Render syntax-highlighted code previews.",
        """
        import cv2
        import numpy as np

        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        try:
            import torch
        except ImportError:  # CPU-only deployments
            torch = None
    """,
    ),
    Agent(
        "Serve embeddings over HTTP.",
        """
        import numpy as np
        import torch

        from django.core.serializers.json import DjangoJSONEncoder
        from twisted.internet import reactor
        from twisted.web import resource, server
    """,
    ),
    Agent(
        "Segment satellite tiles.",
        """
        import cv2
        import numpy as np
        import torch
        import torchvision

        from django.core.cache.backends.locmem import LocMemCache
        from django.utils import timezone
    """,
    ),
    Agent(
        "Read scanned invoices.",
        """
        import cv2
        import numpy as np
        import torch

        from django.core.mail import send_mail
        from django.core.signing import TimestampSigner
        from django.template import Engine
    """,
    ),
    Agent(
        "Track people across cameras.",
        """
        import cv2
        import numpy as np
        import torch
        from torchvision.ops import nms

        from twisted.internet.protocol import Factory
        from twisted.protocols.basic import LineReceiver
    """,
    ),
    Agent(
        "Moderate uploaded images.",
        """
        import numpy as np
        import torch
        from torchvision.io import decode_image

        from django.conf import settings
        from django.http import HttpResponse
        from django.urls import path
    """,
    ),
    Agent(
        "Resize and watermark thumbnails.",
        """
        import cv2
        import numpy as np

        from twisted.internet.threads import deferToThread
        from twisted.web.client import Agent

        try:
            import torchvision
        except ImportError:  # CPU-only deployments
            torchvision = None
    """,
    ),
    Agent(
        "Schedule GPU batch jobs.",
        """
        import numpy as np
        import torch

        from django.utils.dateparse import parse_datetime
        from twisted.application import service
        from twisted.internet import task
    """,
    ),
    Agent(
        "Publish model reports.",
        """
        import numpy as np
        import torch

        from django.utils.html import escape
        from pygments import highlight
        from pygments.formatters.html import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
    """,
        lazy="import cv2",
    ),
    Agent(
        "Answer service discovery for the GPU workers.",
        """
        import numpy as np
        import torch

        from twisted.internet import reactor
        from twisted.names import client
    """,
    ),
    Agent(
        "Stream depth maps to clients.",
        """
        import cv2
        import numpy as np
        import torch
        from torchvision.transforms import functional

        from django.core.validators import URLValidator
        from twisted.spread import pb
    """,
    ),
)

AGENT_SCRIPT = '''"""{summary}

Entry script of the {service} service: one container of the family-gpu image.
"""

from __future__ import annotations

import argparse
import logging

{imports}

log = logging.getLogger("{service}")
COMPONENTS = ({names})


def main() -> None:
{lazy}    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    log.info("starting on %s with %d components", args.device, len(COMPONENTS))


if __name__ == "__main__":
    main()
'''

FAMILY_DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update \\
    && apt-get install -y --no-install-recommends \\
        python3.11 \\
        python3-pip \\
    && rm -rf /var/lib/apt/lists/*
"""
REQUIREMENTS = "numpy\ntorch==2.14.1\ntorchvision==0.29.1\nopencv-python\n"


def log(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)


def _check_call(command: Sequence[str | Path]) -> None:
    log(" ".join(map(str, command)))
    subprocess.run(list(map(str, command)), check=True, stdout=sys.stderr)  # stdout is for figures


def site_packages_of(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python*/site-packages"))
    if not found:
        raise SystemExit(f"no site-packages in {venv}")
    return found[0]


def ensure_venv(folder: Path, python: str, packages: Sequence[str]) -> Path:
    if not (folder / COMPLETE).exists():
        shutil.rmtree(folder, ignore_errors=True)
        _check_call([python, "-m", "venv", folder])
        _check_call([folder / "bin" / "pip", "install", "--disable-pip-version-check", *packages])
        (folder / COMPLETE).write_text(" ".join(packages) + "\n", encoding="utf-8")
    return folder


def _download_sdist(sdist: Sdist, folder: Path, python: str) -> Path:
    path = folder / f"{sdist.name}-{sdist.version}.tar.gz"
    if not path.exists():
        # --no-binary for this one name only: its build backend may still come as a wheel.
        pip = [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
        _check_call([*pip, "--no-binary", sdist.name, "-d", folder, f"{sdist.name}=={sdist.version}"])
    if not path.exists():
        raise SystemExit(f"pip did not download {path.name}")
    return path


def _unpack_package(archive: Path, package: str, into: Path) -> int:
    """Copy the package folder's regular files out of the sdist; links and odd paths are left."""
    copied = 0
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")[1:]  # drop `name-version/`
            inside = "/".join(parts)
            if not member.isfile() or ".." in parts or not inside.startswith(package + "/"):
                continue
            source = tar.extractfile(member)
            if source is not None:
                target = into / Path(package).name / inside[len(package) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
                copied += 1
    return copied


def _bound_names(code: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names += [alias.asname or alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [alias.asname or alias.name for alias in node.names]
    return list(dict.fromkeys(names))


def agent_script(number: int, agent: Agent) -> str:
    imports = textwrap.dedent(agent.imports).strip()
    lazy = "".join(f"    {line}\n" for line in agent.lazy.splitlines())
    names = ", ".join(_bound_names(imports))
    return AGENT_SCRIPT.format(
        summary=agent.summary, service=f"agent-{number:02d}", imports=imports, names=names, lazy=lazy
    )


def fleet_config(site_packages: Path) -> str:
    lines = [
        "# Written by benchmarks/compare.py: 14 entry-script services of one GPU family.",
        'distro = "ubuntu-22.04"',
        "",
        "[families.family-gpu]",
        'dockerfile = "docker/family-gpu/Dockerfile"',
        f"site-packages = [{json.dumps(str(site_packages))}]",
        f'base-image = "{BASE_IMAGE}"',
        "gpu = true",
    ]
    for number in range(1, len(AGENTS) + 1):
        lines += ["", f"[services.agent-{number:02d}]", f'entry = "agents/agent_{number:02d}.py"']
        lines += ['source-roots = ["."]', 'family = "family-gpu"', 'requirements = ["requirements.txt"]']
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def ensure_monorepo(cache: Path, python: str, site_packages: Path) -> Path:
    root = cache / "monorepo"
    if not (root / COMPLETE).exists():
        shutil.rmtree(root, ignore_errors=True)
        for sdist in SDISTS:
            archive = _download_sdist(sdist, cache / "sdists", python)
            log(f"unpacked {_unpack_package(archive, sdist.package, root)} files of {archive.name}")
        for number, agent in enumerate(AGENTS, 1):
            _write(root / "agents" / f"agent_{number:02d}.py", agent_script(number, agent))
        _write(root / "docker" / "family-gpu" / "Dockerfile", FAMILY_DOCKERFILE)
        _write(root / "requirements.txt", REQUIREMENTS)
        _write(root / COMPLETE, "built by benchmarks/compare.py\n")
    # Rewritten each run: the config names whichever site-packages this run measures.
    _write(root / "depaudit.toml", fleet_config(site_packages))
    return root


# Issue 22, target 5: the same environments, 50 entry-script services in 3 families.
SCALE_SERVICES = 50
SCALE_FAMILIES = ("family-gpu", "family-vision", "family-speech")


def scale_config(site_packages: Path) -> str:
    lines = [
        f"# Written by benchmarks/compare.py: {SCALE_SERVICES} entry-script services of {len(SCALE_FAMILIES)} GPU families.",
        'distro = "ubuntu-22.04"',
    ]
    for family in SCALE_FAMILIES:
        lines += ["", f"[families.{family}]", f'dockerfile = "docker/{family}/Dockerfile"']
        lines += [f"site-packages = [{json.dumps(str(site_packages))}]", f'base-image = "{BASE_IMAGE}"', "gpu = true"]
    for number in range(1, SCALE_SERVICES + 1):
        family = SCALE_FAMILIES[(number - 1) % len(SCALE_FAMILIES)]
        lines += ["", f"[services.agent-{number:02d}]", f'entry = "agents/agent_{number:02d}.py"']
        lines += ['source-roots = ["."]', f'family = "{family}"', 'requirements = ["requirements.txt"]']
    return "\n".join(lines) + "\n"


def ensure_scale_monorepo(cache: Path, monorepo: Path, site_packages: Path) -> Path:
    """monorepo-50: the monorepo's shared packages copied, 50 entry scripts (the 14 agents' import
    blocks in turn) and three family Dockerfiles."""
    root = cache / f"monorepo-{SCALE_SERVICES}"
    if not (root / COMPLETE).exists():
        shutil.rmtree(root, ignore_errors=True)
        for sdist in SDISTS:
            name = Path(sdist.package).name
            shutil.copytree(monorepo / name, root / name)
        for number in range(1, SCALE_SERVICES + 1):
            agent = AGENTS[(number - 1) % len(AGENTS)]
            _write(root / "agents" / f"agent_{number:02d}.py", agent_script(number, agent))
        for family in SCALE_FAMILIES:
            _write(root / "docker" / family / "Dockerfile", FAMILY_DOCKERFILE)
        _write(root / "requirements.txt", REQUIREMENTS)
        _write(root / COMPLETE, "built by benchmarks/compare.py\n")
    _write(root / "depaudit.toml", scale_config(site_packages))
    return root


IMAGE_PYTHON = "usr/local/lib/python3.11/site-packages"
OS_RELEASE = 'NAME="Ubuntu"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nID=ubuntu\nVERSION_ID="22.04"\n'


def ensure_image(cache: Path, site_packages: Path) -> Path:
    """gpu-image.tar: a `docker save` of one uncompressed layer holding the gpu-venv's
    site-packages at /usr/local/lib/python3.11/site-packages, an os-release and an empty dpkg
    status; the config's Env is the CUDA runtime image's. Issue 22, target 4 scans it twice."""
    path = cache / "gpu-image.tar"
    if (cache / "gpu-image.complete").exists():
        return path
    layer = cache / "gpu-image-layer.tar"
    log(f"writing {layer} from {site_packages}")
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in (("etc/os-release", OS_RELEASE), ("var/lib/dpkg/status", "")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(site_packages, arcname=IMAGE_PYTHON)
    digest = hashlib.sha256()
    with layer.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [
                "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "CUDA_VERSION=12.1.1",
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
            ]
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench/gpu:latest"], "Layers": ["layer0/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(layer, arcname="layer0/layer.tar")
    layer.unlink()
    (cache / "gpu-image.complete").write_text("built by benchmarks/compare.py\n", encoding="utf-8")
    return path


def image_config(monorepo: Path) -> Path:
    """The monorepo's services with a family that names no site-packages: `--image` brings it."""
    lines = [line for line in fleet_config(Path("/unused")).splitlines() if not line.startswith("site-packages")]
    path = monorepo / "depaudit-image.toml"
    _write(path, "\n".join(lines) + "\n")
    return path


@dataclass
class Inputs:
    site_packages: Path
    monorepo: Path
    tools_venv: Path | None
    site_files: int = 0
    site_bytes: int = 0
    site_py_files: int = 0
    elf_paths: list[str] = field(default_factory=list)
    monorepo_files: int = 0
    monorepo_py_files: int = 0


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == b"\x7fELF"
    except OSError:
        return False


def count_inputs(inputs: Inputs) -> None:
    """Files, bytes and ELF files (by magic, symlinks not followed) of each input."""
    for folder, _dirs, files in os.walk(inputs.site_packages):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            inputs.site_files += 1
            inputs.site_bytes += os.path.getsize(path)
            inputs.site_py_files += name.endswith(".py")
            if _is_elf(path):
                inputs.elf_paths.append(path)
    inputs.elf_paths.sort()
    for folder, dirs, files in os.walk(inputs.monorepo):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        inputs.monorepo_files += len(files)
        inputs.monorepo_py_files += sum(name.endswith(".py") for name in files)


def prepare(
    cache: Path, python: str, site_packages: Path | None, monorepo: Path | None, tools_venv: Path | None
) -> Inputs:
    """Build what was not pointed at; the tools venv is optional (its rows say not installed)."""
    cache.mkdir(parents=True, exist_ok=True)
    site_packages = site_packages or site_packages_of(ensure_venv(cache / "gpu-venv", python, GPU_PACKAGES))
    monorepo = monorepo or ensure_monorepo(cache, python, site_packages)
    if not (monorepo / "depaudit.toml").is_file():
        raise SystemExit(f"{monorepo} has no depaudit.toml")
    if tools_venv is None:
        try:
            tools_venv = ensure_venv(cache / "tools-venv", python, TOOL_PACKAGES)
        except subprocess.CalledProcessError as error:
            log(f"no tools venv ({error}): their rows say not installed")
    inputs = Inputs(site_packages.resolve(), monorepo.resolve(), tools_venv)
    count_inputs(inputs)
    return inputs
