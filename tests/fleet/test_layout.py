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


def test_a_family_reads_its_package_variables_from_the_configs_build_args_and_its_parents_env(tmp_path: Path) -> None:
    from depaudit.fleet.config import load_config
    from depaudit.fleet.layout import fleet_from_config

    _write(tmp_path / "services/tts/main.py", "import numpy\n")
    _write(tmp_path / "services/tts/Dockerfile", "FROM family-audio\n")
    _write(tmp_path / "docker/base/Dockerfile", CUDA + "ENV AUDIO_PACKAGES=libsndfile1\n")
    _write(tmp_path / "docker/family-audio/Dockerfile", (
        "FROM base\nARG EXTRA\nARG TOOLS=wget\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends $AUDIO_PACKAGES $EXTRA ${TOOLS} && rm -rf /var/lib/apt/lists/*\n"
    ))
    _write(tmp_path / "depaudit.toml", (
        'paths = ["services"]\nbuild-args = { EXTRA = "sox", TOOLS = "curl" }\n'
        '[families.family-audio]\nbuild-args = { TOOLS = "tini git" }\n'
    ))
    family = fleet_from_config(load_config(tmp_path / "depaudit.toml")).families["family-audio"]
    (install,) = family.source.apt_installs
    assert [(p.name, p.variable) for p in install.packages] == [
        ("libsndfile1", "AUDIO_PACKAGES"), ("sox", "EXTRA"), ("tini", "TOOLS"), ("git", "TOOLS")
    ]
    assert install.unknown == () and family.source.findings() == []
    # Without the config, $EXTRA cannot be known: a finding, and the install is never patched.
    alone = fleet_from_paths([tmp_path / "services"]).families["family-audio"]
    assert [p.name for p in alone.source.apt_installs[0].packages] == ["libsndfile1", "wget"]
    assert [(f.line, f.message.split(":")[0]) for f in alone.source.findings()] == [(4, "apt-get install $EXTRA")]


def test_two_dockerfiles_claiming_one_family_and_a_from_nothing_resolves_are_findings(tmp_path: Path) -> None:
    from depaudit.findings import Finding, FindingKind

    _write(tmp_path / "services/tts/main.py", "import numpy\n")
    _write(tmp_path / "services/tts/Dockerfile", "FROM family-x\n")
    _write(tmp_path / "docker/base-images/family-x/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    _write(tmp_path / "docker/families/family-x/Dockerfile", CUDA)

    fleet = fleet_from_paths([tmp_path / "services"])

    assert fleet.families["family-x"].display == "docker/base-images/family-x/Dockerfile"
    assert sorted(fleet.findings) == [
        Finding(
            FindingKind.DOCKERFILE, "docker/base-images/family-x/Dockerfile", 2,
            "FROM ${BASE_IMAGE}: no ARG default or build-arg gives it a value, so the base image is unknown; the services"
            " built on family-x are audited against the distro's base packages only; give it a value with the config's"
            " build-args, or set base-image",
        ),
        Finding(
            FindingKind.DOCKERFILE, "docker/families/family-x/Dockerfile", None,
            "this Dockerfile and docker/base-images/family-x/Dockerfile both claim the family family-x: depaudit reads"
            " docker/base-images/family-x/Dockerfile and not this one; name the one you mean in the config"
            " ([families.family-x] dockerfile)",
        ),
    ]


def test_the_config_decides_which_dockerfile_a_family_is_and_its_build_args_resolve_from(tmp_path: Path) -> None:
    from depaudit.fleet.config import load_config
    from depaudit.fleet.layout import fleet_from_config

    _write(tmp_path / "services/tts/main.py", "import numpy\n")
    _write(tmp_path / "services/tts/Dockerfile", "FROM family-x\n")
    _write(tmp_path / "docker/base-images/family-x/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    _write(tmp_path / "docker/families/family-x/Dockerfile", CUDA)
    _write(tmp_path / "depaudit.toml", (
        'paths = ["services"]\n[families.family-x]\ndockerfile = "docker/base-images/family-x/Dockerfile"\n'
        'build-args = { BASE_IMAGE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04" }\n'
    ))
    fleet = fleet_from_config(load_config(tmp_path / "depaudit.toml"))
    assert fleet.findings == ()
    assert fleet.chain(fleet.placements[0]).image == "nvidia/cuda:12.1.1-runtime-ubuntu22.04"


def test_a_service_whose_own_from_resolves_to_nothing_is_a_finding(tmp_path: Path) -> None:
    from depaudit.findings import Finding, FindingKind

    _write(tmp_path / "services/tts/main.py", "import numpy\n")
    _write(tmp_path / "services/tts/Dockerfile", "ARG BASE\nFROM $BASE\n")
    fleet = fleet_from_paths([tmp_path / "services"])
    assert fleet.placements[0].family is None
    assert fleet.findings == (Finding(
        FindingKind.DOCKERFILE, "tts/Dockerfile", 2,
        "FROM $BASE: no ARG default or build-arg gives it a value, so the base image is unknown; the service tts is audited"
        " against the distro's base packages only; give it a value with the config's build-args, or set base-image",
    ),)
