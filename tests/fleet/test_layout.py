"""Where the conventions look for family Dockerfiles when no depaudit.toml names them."""

from __future__ import annotations

from pathlib import Path

from depaudit.fleet.layout import fleet_from_paths

CUDA = "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_monorepo_s_families_are_found_above_its_services_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(repo / "services/tts/main.py", "import numpy\n")
    _write(repo / "services/tts/Dockerfile", "FROM family-audio:latest\n")
    _write(repo / "docker/Dockerfile.family-audio", CUDA)

    fleet = fleet_from_paths([repo / "services"])

    assert [p.family for p in fleet.placements] == ["family-audio"]
    family = fleet.families["family-audio"]
    assert (family.dockerfile, family.display) == (repo / "docker/Dockerfile.family-audio", "docker/Dockerfile.family-audio")


def test_a_repository_that_is_one_service_is_not_walked_above(tmp_path: Path) -> None:
    """`depaudit scan ~/code/svc`: the folder above it (~/code) holds other projects, one with a
    family Dockerfile of the same name that sorts first."""
    svc = tmp_path / "code/svc"
    (svc / ".git").mkdir(parents=True)
    _write(svc / "main.py", "import numpy\n")
    _write(svc / "Dockerfile", "FROM family-gpu:latest\n")
    _write(svc / "docker/Dockerfile.family-gpu", CUDA)
    _write(tmp_path / "code/another-project/Dockerfile.family-gpu", "FROM debian:12\n")

    fleet = fleet_from_paths([svc])

    assert [p.family for p in fleet.placements] == ["family-gpu"]
    family = fleet.families["family-gpu"]
    assert (family.dockerfile, family.display) == (svc / "docker/Dockerfile.family-gpu", "docker/Dockerfile.family-gpu")
