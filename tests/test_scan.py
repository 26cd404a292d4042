"""The whole pipeline on real files: gcc-built wheels, real dist-info, real sources."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from depaudit.findings import Finding, FindingKind
from depaudit.evidence import Tier, chain_text
from depaudit.packages.model import Need
from depaudit.scan import InputError, ScanOptions, run_scan
from helpers import build_vision_env, have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

CORE = "visionlib/_core.cpython-311-x86_64-linux-gnu.so"


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision"))


def _services(tmp_path: Path, sources: dict[str, str]) -> Path:
    for name, text in sources.items():
        path = tmp_path / "services" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "services"


def _missing(service) -> list[tuple[str, str | None, str]]:
    return [(n.name, n.package, n.tier.value) for n in service.needs if n.status == "missing"]


def test_required_and_optional_needs_with_their_evidence(tmp_path: Path, vision_sp: Path) -> None:
    services = _services(
        tmp_path,
        {
            "detector/app.py": "import visionlib\n",
            "detector/requirements.txt": "visionlib==2.0\nunusedlib\n",
            "preview/app.py": "def show():\n    try:\n        import visionlib\n    except ImportError:\n        pass\n",
        },
    )
    report = run_scan(ScanOptions((services,), (vision_sp,), "ubuntu-22.04"))
    detector, preview = report.services
    assert replace(detector.needs[0], chain=chain_text(detector.needs[0].chain)) == Need(
        "soname",
        "libGL.so.1",
        "missing",
        "libgl1",
        Tier.REQUIRED,
        (
            "detector",
            "detector/app.py:1 import visionlib",
            "visionlib 2.0",
            CORE,
            "visionlib.libs/libvis-1a2b.so.1",
            "libGL.so.1",
            "libgl1 (ubuntu-22.04)",
        ),
        found_at=None,
        rule=None,
        tried=("visionlib.libs",),  # the loader's DT_RPATH: all ld.so would search in the environment
    )
    assert _missing(detector) == [("libGL.so.1", "libgl1", "required"), ("libX11.so.6", "libx11-6", "optional")]
    assert [(n.name, n.status, n.tier.value) for n in detector.needs if n.status != "missing"] == [
        ("libz.so.1", "base-image", "required"),
        ("libc.so.6", "libc", "required"),
        ("libvis-1a2b.so.1", "bundled", "required"),
    ]
    assert detector.findings == (
        Finding(
            FindingKind.UNUSED_REQUIREMENT,
            "detector/requirements.txt",
            2,
            "unusedlib is declared but never imported, nor needed by what is imported; "
            "remove it if nothing loads it by other means",
        ),
    )
    # A guarded import inside a function: the service runs without it.
    assert _missing(preview) == [("libGL.so.1", "libgl1", "optional"), ("libX11.so.6", "libx11-6", "optional")]
    assert report.failing is True  # the detector's libGL.so.1 is required
    assert [d.distribution for d in detector.imports] == ["visionlib"]


def test_a_tree_with_three_bad_files_reports_three_findings_and_everything_else(
    tmp_path: Path, vision_sp: Path
) -> None:
    clean = _services(tmp_path / "clean", {"detector/app.py": "import visionlib\n"})
    bad = _services(tmp_path / "bad", {"detector/app.py": "import visionlib\n", "detector/broken.py": "def (\n"})
    (bad / "detector" / "libhelper.so").write_text("/* GNU ld script */\nGROUP ( libhelper.so.1 )\n")
    os.symlink(bad / "detector" / "nowhere.py", bad / "detector" / "dangling.py")

    expected = run_scan(ScanOptions((clean,), (vision_sp,), "ubuntu-22.04")).services[0]
    report = run_scan(ScanOptions((bad,), (vision_sp,), "ubuntu-22.04"))
    service = report.services[0]
    assert [(f.kind, f.path) for f in service.findings] == [
        (FindingKind.NOT_ELF, "detector/libhelper.so"),
        (FindingKind.PARSE_ERROR, "detector/broken.py"),
        (FindingKind.UNREADABLE_FILE, "detector/dangling.py"),
    ]
    assert service.needs == expected.needs
    assert service.imports == expected.imports


def test_input_errors(tmp_path: Path, vision_sp: Path) -> None:
    with pytest.raises(InputError, match="unknown distro 'fedora-40'"):
        run_scan(ScanOptions((tmp_path,), (vision_sp,), "fedora-40"))
    with pytest.raises(InputError, match="not a folder"):
        run_scan(ScanOptions((tmp_path / "nope",), (vision_sp,), "ubuntu-22.04"))
    with pytest.raises(InputError, match="no Python services found"):
        run_scan(ScanOptions((tmp_path,), (vision_sp,), "ubuntu-22.04"))


def test_a_built_index_names_packages_the_rules_do_not_know(tmp_path: Path) -> None:
    import gzip

    from depaudit.packages.index import build_index, save_index
    from helpers import build_so, make_dist

    sp = tmp_path / "site-packages"
    accel = build_so(tmp_path / "stubs/libfooaccel.so.3", soname="libfooaccel.so.3")
    build_so(sp / "prof/_trace.cpython-311-x86_64-linux-gnu.so", needed=[accel])
    make_dist(sp, "prof", existing=["prof/_trace.cpython-311-x86_64-linux-gnu.so"])
    service = _services(tmp_path, {"tracer/main.py": "import prof\n"})

    def accel_need() -> tuple[str, str | None]:
        need = next(n for n in run_scan(ScanOptions((service,), (sp,), "ubuntu-22.04", cache_dir=tmp_path / "cache")).services[0].needs if n.name == "libfooaccel.so.3")
        return need.status, need.package

    assert accel_need() == ("unmapped", None)
    contents = tmp_path / "Contents-amd64.gz"
    contents.write_bytes(gzip.compress(b"opt/foo/lib/libfooaccel.so.3 libs/libfooaccel3\n"))
    save_index(build_index("ubuntu-22.04", contents), tmp_path / "cache")
    assert accel_need() == ("missing", "libfooaccel3")


def test_programs_a_service_starts(tmp_path: Path, vision_sp: Path) -> None:
    source = (
        "import shutil, subprocess, sys\n"
        "for tool in ('git', 'curl'):\n"
        "    if shutil.which(tool) is None:\n"
        "        sys.exit(tool)\n"
        "def convert(argv):\n"
        "    subprocess.run(argv)  # argv from a variable: nothing to report\n"
        "    subprocess.run(['unknown-tool-xyz', '-v'])\n"
    )
    services = _services(tmp_path, {"tools/main.py": source})
    service = run_scan(ScanOptions((services,), (vision_sp,), "debian-12")).services[0]
    assert [(n.kind, n.name, n.status, n.package, n.tier.value, str(n.chain[1])) for n in service.needs] == [
        ("program", "curl", "missing", "curl", "required", "tools/main.py:3 shutil.which('curl')"),
        ("program", "git", "missing", "git", "required", "tools/main.py:3 shutil.which('git')"),
        ("program", "unknown-tool-xyz", "unmapped", None, "required", "tools/main.py:7 subprocess.run('unknown-tool-xyz')"),
    ]


def test_a_load_or_start_whose_failure_is_caught_is_optional(tmp_path: Path, vision_sp: Path) -> None:
    source = (
        "import ctypes, subprocess\n"
        "def gpu_name():\n"
        "    try:\n"
        "        return subprocess.check_output(['nvidia-smi', '-L'])\n"
        "    except (FileNotFoundError, subprocess.CalledProcessError):\n"
        "        return None\n"
        "try:\n"
        "    ctypes.CDLL('libmagic.so.1')\n"
        "except OSError:\n"
        "    pass\n"
    )
    services = _services(tmp_path, {"tools/main.py": source})
    report = run_scan(ScanOptions((services,), (vision_sp,), "debian-12"))
    assert [(n.name, n.status, n.package, n.tier.value, str(n.chain[1])) for n in report.services[0].needs] == [
        ("libmagic.so.1", "missing", "libmagic1", "optional", "tools/main.py:8 ctypes.CDLL('libmagic.so.1') inside a try that catches its failure"),
        # The driver's program (utility): no base image is known, so every capability counts as asked for.
        ("nvidia-smi", "driver", None, "optional", "tools/main.py:4 subprocess.check_output('nvidia-smi') inside a try that catches its failure"),
    ]
    assert not report.failing


def test_a_local_module_behind_a_guarded_import_needs_nothing_required(tmp_path: Path, vision_sp: Path) -> None:
    helper = "def record():\n    try:\n        import helper\n    except Exception:\n        return None\n    return helper.capture()\n"
    services = _services(tmp_path, {"recorder/app.py": helper, "recorder/helper.py": "import visionlib\n"})
    report = run_scan(ScanOptions((services,), (vision_sp,), "ubuntu-22.04"))
    recorder = report.services[0]
    assert _missing(recorder) == [("libGL.so.1", "libgl1", "optional"), ("libX11.so.6", "libx11-6", "optional")]
    assert chain_text(recorder.needs[0].chain)[:4] == (
        "recorder",
        "recorder/app.py:3 import helper, inside a try that survives its failure",
        "recorder/helper.py:1 import visionlib",
        "visionlib 2.0",
    )
    assert not report.failing
