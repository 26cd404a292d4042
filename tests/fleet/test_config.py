"""Reading depaudit.toml / [tool.depaudit]: every key, and a clear error for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.fleet.config import DEFAULT_FAMILY_GLOBS, ConfigError, find_config, load_config

FULL = """\
distro = "ubuntu-22.04"
paths = ["services"]
family-dockerfiles = ["docker/*/Dockerfile"]
site-packages = "envs/common"
env = { LD_LIBRARY_PATH = "/opt/lib" }

[families.family-vision]
dockerfile = "docker/family-vision/Dockerfile"
parent = "base-gpu"
site-packages = ["envs/vision"]
base-image = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
gpu = true

[services.FaceRecognition]
entry = "agents/face.py"
family = "family-vision"
source-roots = ["."]
requirements = ["agents/requirements-face.txt"]

[services.stt]
path = "services/stt"
"""


def test_every_key_is_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "depaudit.toml").write_text(FULL)
    config = load_config(tmp_path / "depaudit.toml")
    assert config.root == tmp_path
    assert config.distro == "ubuntu-22.04"
    assert config.paths == (tmp_path / "services",)
    assert config.family_globs == ("docker/*/Dockerfile",)
    assert config.site_packages == (tmp_path / "envs/common",)  # one string is a list of one
    assert config.env == {"LD_LIBRARY_PATH": "/opt/lib"}
    family = config.families["family-vision"]
    assert family.dockerfile == tmp_path / "docker/family-vision/Dockerfile"
    assert family.parent == "base-gpu"
    assert family.site_packages == (tmp_path / "envs/vision",)
    assert family.base_image == "nvidia/cuda:12.1.1-runtime-ubuntu22.04"  # no such path: a reference
    assert family.gpu is True
    face = config.services["FaceRecognition"]
    assert (face.entry, face.path, face.family) == (tmp_path / "agents/face.py", None, "family-vision")
    assert face.source_roots == (tmp_path,)
    assert face.requirements == (tmp_path / "agents/requirements-face.txt",)
    stt = config.services["stt"]
    assert (stt.path, stt.entry, stt.requirements) == (tmp_path / "services/stt", None, None)


def test_defaults(tmp_path: Path) -> None:
    (tmp_path / "depaudit.toml").write_text("")
    config = load_config(tmp_path / "depaudit.toml")
    assert (config.distro, config.paths, config.families, config.services) == (None, (), {}, {})
    assert config.family_globs == DEFAULT_FAMILY_GLOBS


def test_a_base_image_that_exists_as_a_path_becomes_absolute(tmp_path: Path) -> None:
    (tmp_path / "images/rootfs").mkdir(parents=True)
    (tmp_path / "depaudit.toml").write_text('base-image = "images/rootfs"\n')
    assert load_config(tmp_path / "depaudit.toml").base_image == str(tmp_path / "images/rootfs")


def test_tool_depaudit_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.depaudit]\ndistro = "debian-12"\n')
    assert find_config(tmp_path) == tmp_path / "pyproject.toml"
    assert load_config(tmp_path / "pyproject.toml").distro == "debian-12"


def test_find_config_prefers_depaudit_toml_and_ignores_a_pyproject_without_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(tmp_path) is None
    (tmp_path / "depaudit.toml").write_text("")
    assert find_config(tmp_path) == tmp_path / "depaudit.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("distro = 3\n", "top level distro: expected a non-empty string, got 3"),
        ("colour = 'red'\n", "depaudit.toml, line 1: top level: unknown key 'colour' (known: distro, paths, family-dockerfiles,"),
        ("[families.a]\ndockerfile = 'x'\nparents = 'b'\n", "[families.a]: unknown key 'parents'"),
        ("[families.a]\nparent = 'a'\n", "[families.a] parent: a family cannot be its own parent"),
        ("[families.a]\ngpu = 'yes'\n", "[families.a] gpu: expected true or false, got 'yes'"),
        ("[services.s]\nfamily = 'a'\n", "[services.s]: give exactly one of `path` (a service folder) or `entry`"),
        ("[services.s]\npath = 'a'\nentry = 'b.py'\n", "[services.s]: give exactly one of `path`"),
        ("[services.s]\npath = 'a'\nsource-roots = ['.']\n", "[services.s] source-roots: only an `entry` service"),
        ("[services.s]\nentry = 'a.py'\nsource-roots = [1]\n", "[services.s] source-roots: expected a list of non-empty strings"),
        ("services = ['a']\n", "[services]: expected a table, got list"),
        ("env = { A = 1 }\n", "top level env.A: expected a string, got 1"),
        ("distro = \n", "depaudit.toml, line 1: not valid TOML: Invalid value (at line 1, column 10)"),
    ],
)
def test_mistakes_are_errors_that_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "depaudit.toml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "depaudit.toml")
    assert message in str(error.value)


def test_a_pyproject_without_the_table_given_explicitly_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"has no \[tool.depaudit\] table"):
        load_config(tmp_path / "pyproject.toml")
