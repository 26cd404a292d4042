"""Embedded base-image profiles: what nvidia/cuda images provide, without the image."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.evidence import NeedStatus
from depaudit.packages.classify import PackageAnswer, classify_soname
from depaudit.packages.profiles import known_profiles, load_profile
from depaudit.packages.rules import RulesError, load_rules

RUNTIME = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
CUDNN = "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"


def test_known_profiles() -> None:
    known = known_profiles()
    assert {CUDNN, RUNTIME} <= set(known) and all(image.startswith("nvidia/cuda:") for image in known)


def test_cudnn_only_in_the_cudnn_variant_and_cupti_in_neither() -> None:
    rules = load_rules("ubuntu-22.04")
    runtime, cudnn = load_profile(RUNTIME), load_profile(CUDNN)
    assert classify_soname(rules, "libcublasLt.so.12", profile=runtime) == PackageAnswer(NeedStatus.BASE_IMAGE, "libcublas-12-1")
    # Not in the runtime image: the rules name NVIDIA's package for it.
    assert classify_soname(rules, "libcudnn.so.8", profile=runtime) == PackageAnswer(NeedStatus.MISSING, "libcudnn8")
    assert classify_soname(rules, "libcudnn_cnn_infer.so.8", profile=cudnn) == PackageAnswer(NeedStatus.BASE_IMAGE, "libcudnn8")
    assert classify_soname(rules, "libcublas.so.12", profile=cudnn) == PackageAnswer(NeedStatus.BASE_IMAGE, "libcublas-12-1")
    for profile in (runtime, cudnn):
        assert classify_soname(rules, "libcupti.so.12", profile=profile, cuda_version="12.1.1") == PackageAnswer(
            NeedStatus.MISSING, "cuda-cupti-12-1"
        )
        # Without a CUDA version the package cannot be named: unmapped, never a guessed minor version.
        assert classify_soname(rules, "libcupti.so.12", profile=profile).status is NeedStatus.UNMAPPED
        assert classify_soname(rules, "libcuda.so.1", profile=profile).status is NeedStatus.DRIVER
        assert classify_soname(rules, "libGL.so.1", profile=profile) == PackageAnswer(NeedStatus.MISSING, "libgl1")
    assert cudnn.env["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"
    # Its own source, the runtime's and the base's: each names the Dockerfile it was read from.
    assert len(cudnn.sources) == 3 and all("Dockerfile" in source for source in cudnn.sources)


def test_unknown_image_and_bad_profile(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"no profile for base image 'ubuntu:22.04' \(known: nvidia/cuda"):
        load_profile("ubuntu:22.04")
    (tmp_path / "x.toml").write_text('image = "x:1"\ndistro = "d"\nsource = "s"\npackages = []\nenv = {}\nsonames = {}\nbogus = 1\n')
    with pytest.raises(RulesError, match="profiles/x.toml: unknown key 'bogus'"):
        load_profile("x:1", tmp_path)
