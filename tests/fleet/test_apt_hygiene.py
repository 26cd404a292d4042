"""apt hygiene findings: each gap of an `apt-get install` in the final stage, on the install's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.dockerfile.parse import apt_installs
from depaudit.dockerfile.problems import dockerfile_problems
from helpers import EXAMPLE_FLEET

YES = "apt-get install without -y: a docker build cannot answer its prompt; add -y"
UPDATE = (
    "apt-get install without apt-get update before it in the same RUN: the package lists come from a stale"
    " cached layer or are missing; put `apt-get update &&` in front of it"
)
LISTS = (
    "apt-get install leaves the package lists in the layer:"
    " end this RUN with `&& rm -rf /var/lib/apt/lists/*` (apt-get clean does not remove them)"
)
RECOMMENDS = (
    "apt-get install without --no-install-recommends: the image also gets every package these recommend;"
    " add --no-install-recommends, then list any recommended package a service needs"
)


def test_each_gap_is_reported_on_the_line_of_its_install() -> None:
    text = (
        "FROM debian:12 AS build\n"
        "RUN apt-get install gcc\n"  # a build stage is not the image: never reported
        "FROM debian:12\n"
        "RUN apt-get update\n"  # another layer's update does not count
        "RUN set -eux; \\\n"
        "    # the runtime\n"
        "    apt-get install \\\n"
        "        curl; \\\n"
        "    apt-get clean\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends git\n"
        "RUN rm -rf /var/lib/apt/lists/* && apt-get update && apt-get -y install --no-install-recommends make\n"
    )
    assert dockerfile_problems(text) == [
        (7, YES),
        (7, UPDATE),
        (7, LISTS),
        (7, RECOMMENDS),
        (10, LISTS),
        (11, LISTS),  # removed before the install, not after it
    ]


@pytest.mark.parametrize(
    "run",
    [
        "apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
        "apt update && apt install --yes --no-install-recommends curl && rm -rf /var/lib/apt/lists",
        "apt-get update -qq && apt-get install -qq curl --no-install-recommends; rm -rf /tmp/* /var/lib/apt/lists/",
        "apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -o APT::Install-Recommends=false -yq install curl"
        " && apt-get clean && rm -rf /var/lib/apt/lists/*",
        "apt-get update && apt-get install --assume-yes --option=APT::Install-Recommends=0 curl && rm -fr '/var/lib/apt/lists'",
        "--mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y --no-install-recommends curl",
        "apt-get update && yes | apt-get install --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
        "if true; then sudo apt-get update && sudo apt-get install -y --no-install-recommends curl; fi"
        " && sudo rm -rf /var/lib/apt/lists/*",
    ],
)
def test_common_hygienic_spellings_are_not_reported(run: str) -> None:
    text = f"FROM debian:12\nRUN {run}\n"
    assert [[p.name for p in install.packages] for install in apt_installs(text)] == [["curl"]]
    assert dockerfile_problems(text) == []


def test_apt_conf_written_earlier_in_the_stage_counts() -> None:
    text = (
        "FROM debian:12\n"
        "RUN printf 'APT::Install-Recommends \"false\";\\nAPT::Get::Assume-Yes \"true\";\\n' > /etc/apt/apt.conf.d/90docker\n"
        "RUN apt-get update && apt-get install curl && rm -rf /var/lib/apt/lists/*\n"
    )
    assert dockerfile_problems(text) == []
    # An -o given to another command is not configuration for this one.
    other = (
        "FROM debian:12\n"
        "RUN apt-get update && apt-get install -y -o APT::Install-Recommends=false a && rm -rf /var/lib/apt/lists/*\n"
        "RUN apt-get update && apt-get install -y b && rm -rf /var/lib/apt/lists/*\n"
    )
    assert dockerfile_problems(other) == [(3, RECOMMENDS)]


def test_clean_alone_and_partial_lists_do_not_remove_the_lists() -> None:
    for cleanup in ("apt-get clean", "rm -rf /var/lib/apt/lists/partial", "rm -rf /var/cache/apt/*"):
        text = f"FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl && {cleanup}\n"
        assert dockerfile_problems(text) == [(2, LISTS)], cleanup


def test_heredoc_installs_keep_their_one_finding() -> None:
    text = "FROM debian:12\nRUN <<EOF\napt-get install git\nEOF\n"
    assert dockerfile_problems(text) == [
        (2, "apt-get install inside a heredoc: depaudit reads it but will not patch it")
    ]


def test_apt_options_with_a_value_are_not_packages() -> None:
    text = "FROM debian:12\nRUN apt-get -o Dpkg::Options::=--force-confold install -y -t bookworm-backports curl\n"
    [install] = apt_installs(text)
    assert [p.name for p in install.packages] == ["curl"]
    assert install.flags == ("-o Dpkg::Options::=--force-confold", "-y", "-t bookworm-backports")


def test_the_example_fleet_is_hygienic() -> None:
    dockerfiles = sorted((EXAMPLE_FLEET / "docker").glob("*/Dockerfile"))
    assert len(dockerfiles) == 3
    for path in dockerfiles:
        text = Path(path).read_text()
        assert apt_installs(text), path
        assert dockerfile_problems(text) == [], path
