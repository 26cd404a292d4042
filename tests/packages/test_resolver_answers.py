"""One resolver per base per scan keeps its answers: a service asking after another gets what a
fresh resolver gives, with its own evidence and tier, never the first asker's."""

from __future__ import annotations

from dataclasses import replace

from depaudit.evidence import EvidenceStep, NeedKind, NeedStatus, StepKind, Tier, service_step
from depaudit.native.hints import FileHint
from depaudit.collect.hint_calls import NativeHint
from depaudit.native.model import LibraryStatus, NativeNeed
from depaudit.packages.loaded import EarlierLoad
from depaudit.packages.profiles import load_profile
from depaudit.packages.resolver import PackageResolver
from depaudit.packages.rules import load_rules

RECORDS = [
    NativeNeed("libgomp.so.1", LibraryStatus.SYSTEM, Tier.REQUIRED, ("torch/lib/libtorch_cpu.so",), None, None),
    NativeNeed("libcuda.so.1", LibraryStatus.SYSTEM, Tier.OPTIONAL, ("torch/lib/libc10_cuda.so",), None, None),
    NativeNeed("libcudnn.so.9", LibraryStatus.SYSTEM, Tier.REQUIRED, ("torch/lib/libtorch_cuda.so",), None, None, tried=("/usr/lib",)),
    NativeNeed("libnowhere.so.3", LibraryStatus.SYSTEM, Tier.REQUIRED, ("cv2/cv2.abi3.so",), None, None, tried=("/lib", "/usr/lib")),
    NativeNeed("libc10.so", LibraryStatus.BUNDLED, Tier.REQUIRED, ("torch/lib/libtorch.so",), "torch/lib/libc10.so", None, "DT_RUNPATH"),
]


def _resolver() -> PackageResolver:
    return PackageResolver(load_rules("ubuntu-22.04"), None, None, load_profile("nvidia/cuda:12.1.1-runtime-ubuntu22.04"), "12.1.1")


def test_a_shared_resolver_answers_each_service_as_a_fresh_one_does() -> None:
    shared = _resolver()
    earlier = EarlierLoad("cv2/../opencv.libs/libnowhere.so.3", "opencv-python", EvidenceStep(StepKind.LOADED, "import cv2 first"), False)
    for service, tier in (("agent-01", Tier.REQUIRED), ("agent-02", Tier.OPTIONAL), ("agent-01", Tier.HINT)):
        prefix = (service_step(service), EvidenceStep(StepKind.IMPORT, "import torch", f"{service}.py", 3))
        for record in RECORDS:
            for before in (None, earlier):
                assert shared.native_need(record, tier, prefix, before) == _resolver().native_need(record, tier, prefix, before)
        for kind, name in ((NeedKind.PROGRAM, "ffmpeg"), (NeedKind.SONAME, "libGL.so.1"), (NeedKind.SONAME, "libcuda.so.1")):
            assert shared.named_need(kind, name, tier, prefix) == _resolver().named_need(kind, name, tier, prefix)
        hint = FileHint("torch/_ops.py", NativeHint(12, "library", ("libgomp.so.1",), "ctypes.CDLL", lazy=False))
        assert shared.hint_needs(hint, tier, prefix) == _resolver().hint_needs(hint, tier, prefix)


def test_what_the_answers_say() -> None:
    """The kept answers are the resolver's own: one each way a record can go."""
    resolver = _resolver()
    prefix = (service_step("agent-01"),)
    gomp, cuda, cudnn, nowhere, bundled = (resolver.native_need(record, Tier.REQUIRED, prefix) for record in RECORDS)
    assert [str(step) for step in gomp.chain] == ["agent-01", "torch/lib/libtorch_cpu.so", "libgomp.so.1", "libgomp1 (ubuntu-22.04)"]
    assert (gomp.status, gomp.package, gomp.tried) == (NeedStatus.MISSING, "libgomp1", ())
    assert (cuda.status, cuda.package, cuda.tier) == (NeedStatus.DRIVER, None, Tier.REQUIRED)
    assert (nowhere.status, nowhere.package, nowhere.tried) == (NeedStatus.UNMAPPED, None, ("/lib", "/usr/lib"))
    assert (bundled.status, bundled.found_at, bundled.rule) == (NeedStatus.BUNDLED, "torch/lib/libc10.so", "DT_RUNPATH")
    assert [str(step) for step in bundled.chain] == ["agent-01", "torch/lib/libtorch.so", "libc10.so", "torch/lib/libc10.so"]
    # An object an earlier import loaded answers a need the base lacks: no package step, the load instead.
    step = EvidenceStep(StepKind.LOADED, "import cv2 first")
    loaded = resolver.native_need(RECORDS[3], Tier.OPTIONAL, prefix, EarlierLoad("x/libnowhere.so.3", "opencv-python", step, False))
    assert (loaded.status, loaded.tier, loaded.found_at, loaded.chain[-1]) == (NeedStatus.LOADED, Tier.OPTIONAL, "x/libnowhere.so.3", step)
    # cuDNN 9's package is named by the build's CUDA major: each major its own resolver, made once.
    thirteen = resolver.for_cuda_major("13")
    assert thirteen is resolver.for_cuda_major("13")
    assert thirteen.native_need(RECORDS[2], Tier.REQUIRED, prefix).package == "libcudnn9-cuda-13"
    assert resolver.for_cuda_major("12").native_need(RECORDS[2], Tier.REQUIRED, prefix).package == "libcudnn9-cuda-12"
    assert thirteen.native_need(RECORDS[2], Tier.REQUIRED, prefix) == replace(_resolver(), cuda_major="13").native_need(
        RECORDS[2], Tier.REQUIRED, prefix
    )
