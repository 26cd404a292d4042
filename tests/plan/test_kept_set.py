"""The kept set on the distro's real Depends (rules/ubuntu-22.04.toml): only what the plan keeps
pulls other packages in."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.dockerfile.model import Dockerfile
from depaudit.evidence import NeedKind, NeedStatus, Tier
from depaudit.fleet.layout import FamilySpec
from depaudit.packages.model import Need, ServiceReport
from depaudit.packages.rules import load_rules
from depaudit.packages.sizes import load_sizes
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.plan.planner import plan_families

CUDA = "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\n"


def _plan(packages: str, needs: list[tuple[str, Tier]], distro: str = "ubuntu-22.04") -> FamilyPlan:
    text = CUDA + f"RUN apt-get update && apt-get install -y --no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*\n"
    family = FamilySpec("family-audio", Dockerfile(Path("Dockerfile"), "Dockerfile", text), None)
    service = ServiceReport(
        "tts", (), tuple(Need(NeedKind.SONAME, f"{p}.so", NeedStatus.MISSING, p, tier, ()) for p, tier in needs), (),
        None, ("family-audio",),
    )
    (plan,) = plan_families({"family-audio": family}, [service], load_rules(distro), sizes=load_sizes(distro))
    return plan


@pytest.mark.parametrize("packages", ["ffmpeg libasound2 libportaudio2", "libasound2 libportaudio2"])
def test_a_package_is_a_dependency_of_the_kept_package_whether_or_not_an_unused_one_is_listed(packages: str) -> None:
    plan = _plan(packages, [("libportaudio2", Tier.REQUIRED)])
    assert plan.redundant == (PlanItem("libasound2", Tier.OPTIONAL, "installed anyway as a dependency of libportaudio2", 2),)
    assert [i.package for i in plan.unused] == (["ffmpeg"] if "ffmpeg" in packages else [])


def test_the_only_package_that_brings_an_optional_need_in_stays() -> None:
    # Nothing needs ffmpeg itself, but an optional need of libavcodec58 comes only through it.
    plan = _plan("ffmpeg curl", [("libavcodec58", Tier.OPTIONAL)])
    assert [i.package for i in plan.unused] == ["curl"]
    assert plan.add == plan.redundant == ()
    # A required need is added instead: ffmpeg goes.
    plan = _plan("ffmpeg curl", [("libavcodec58", Tier.REQUIRED)])
    assert [i.package for i in plan.add] == ["libavcodec58"]
    assert [i.package for i in plan.unused] == ["ffmpeg", "curl"]


def test_a_listed_virtual_package_is_redundant_when_its_provider_stays() -> None:
    # On noble, libasound2 is a name libasound2t64 provides (the 64-bit time_t transition).
    plan = _plan("libasound2 libportaudio2", [("libportaudio2", Tier.REQUIRED)], "ubuntu-24.04")
    assert plan.redundant == (
        PlanItem("libasound2", Tier.OPTIONAL, "a virtual package that libasound2t64 provides, and it stays", 2),
    )
    assert plan.unused == plan.add == ()


def test_what_a_services_own_dockerfile_runs_keeps_its_package_in_the_family() -> None:
    text = CUDA + "RUN apt-get update && apt-get install -y --no-install-recommends curl wget git && rm -rf /var/lib/apt/lists/*\n"
    family = FamilySpec("family-web", Dockerfile(Path("Dockerfile"), "Dockerfile", text), None)
    own = Dockerfile(
        Path("svc/Dockerfile"), "svc/Dockerfile",
        'FROM family-web\nRUN git clone https://example.org/models /models\nHEALTHCHECK CMD ["sh", "-c", "curl -f localhost || exit 1"]\n',
    )
    service = ServiceReport("svc", (), (), (), None, ("family-web",))
    rules = load_rules("ubuntu-22.04")
    (alone,) = plan_families({"family-web": family}, [service], rules)
    assert [i.package for i in alone.unused] == ["curl", "wget", "git"]
    (plan,) = plan_families({"family-web": family}, [service], rules, service_dockerfiles=[("family-web", own)])
    assert [i.package for i in plan.unused] == ["wget"]
