"""The lock's share of the cache is bounded: least recently used first out, what the running scan
used never, and no trimming while another scan holds the folder. At a cap of one byte, so that
every entry the scan did not use must go."""

from __future__ import annotations

from pathlib import Path

from depaudit.lock.environment import LockEnvironment, lock_environment
from depaudit.lock.kept import KeptWheels
from depaudit.lock.tags import wheel_target
from depaudit.native.reads import read_by_the_scan
from lock_wheels import Wheels, sha256_of

PY311 = wheel_target("3.11", "ubuntu-22.04")


def _scan(lock: Path, wheels: Wheels, cache: Path, cap: int) -> tuple[LockEnvironment, KeptWheels]:
    kept = KeptWheels(cache, max_bytes=cap)
    audit = lock_environment(lock, PY311, find_links=[wheels.folder], cache=cache, reads=read_by_the_scan, kept=kept)
    return audit, kept


def _entries(cache: Path) -> set[str]:
    found = {p.name for p in cache.glob("wheel-trees/*/*/*")} | {p.name for p in cache.glob("lock-envs/*/*")}
    return found


def test_at_a_tiny_cap_what_the_last_scan_used_is_all_that_stays(wheels: Wheels, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    only_demo, both = tmp_path / "a.txt", tmp_path / "b.txt"
    only_demo.write_text("demo==1.0\n")
    both.write_text("demo==1.0\ndemo-user==2.0\n")
    demo, user = sha256_of(wheels.demo), sha256_of(wheels.user)

    first, kept = _scan(only_demo, wheels, cache, 1)
    env_a = first.site_packages.parents[2]
    kept.close()
    assert _entries(cache) == {demo, env_a.name}  # its own: kept past the cap

    second, kept = _scan(both, wheels, cache, 1)
    env_b = second.site_packages.parents[2]
    assert second.findings == () and env_b != env_a
    kept.close()
    assert _entries(cache) == {demo, user, env_b.name}  # a's site-packages went; demo's tree is b's too

    third, kept = _scan(only_demo, wheels, cache, 1)
    assert third.site_packages.parents[2] == env_a and (third.site_packages / "demo").is_dir()  # made again
    assert [tree.cached for tree in third.trees] == [True]
    kept.close()
    assert _entries(cache) == {demo, env_a.name}


def test_no_trim_while_another_scan_holds_the_folder_nor_after_a_scan_that_added_nothing(wheels: Wheels, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    only_demo, both = tmp_path / "a.txt", tmp_path / "b.txt"
    only_demo.write_text("demo==1.0\n")
    both.write_text("demo==1.0\ndemo-user==2.0\n")
    _, kept = _scan(both, wheels, cache, 1 << 40)
    kept.close()
    before = _entries(cache)
    other = KeptWheels(cache)  # another scan, still running
    _, kept = _scan(only_demo, wheels, cache, 1)
    assert kept.wrote  # a's site-packages is new
    kept.close()
    assert _entries(cache) > before  # nothing removed: the other scan may be reading b's
    other.close()  # it added nothing: it leaves the folder as it is
    assert _entries(cache) > before
    _, kept = _scan(only_demo, wheels, cache, 1)
    assert not kept.wrote
    kept.close()
    assert _entries(cache) > before


def test_a_killed_scans_unfinished_tree_is_removed_when_trimming(wheels: Wheels, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lock = tmp_path / "a.txt"
    lock.write_text("demo==1.0\n")
    first, kept = _scan(lock, wheels, cache, 1 << 40)
    kept.close()
    (tree,) = first.trees
    leftover = tree.folder.parent / "0123456789abcdef-killed"
    (leftover / "demo").mkdir(parents=True)
    (tmp_path / "b.txt").write_text("demo==1.0\ndemo-user==2.0\n")
    _, kept = _scan(tmp_path / "b.txt", wheels, cache, 1 << 40)
    kept.close()
    assert not leftover.exists() and tree.folder.is_dir()
