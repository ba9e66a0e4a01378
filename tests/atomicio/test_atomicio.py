"""Tests for atomicio/: whole file or nothing, no temporary left behind, umask modes."""

import os
import stat

import pytest

from atomicio import atomic_write_bytes, atomic_write_text


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first ü")
    atomic_write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails inside the write
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_gets_the_mode_the_umask_gives(tmp_path, umask):
    """Like open(path, 'w'): 0o666 less the umask, not mkstemp's 0o600."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        (tmp_path / "b.json").write_text("{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.json").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "b.json").stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX modes")
def test_concurrent_writers_never_change_the_umask(tmp_path):
    """Eight threads writing at once under umask 0o027: every file 0o640, umask unchanged.

    The mode comes from the kernel (``open(..., 0o666)``), so no writer sets the umask,
    not even for an instant in which another thread's file would get the wrong mode.
    """
    from concurrent.futures import ThreadPoolExecutor

    from atomicio import default_mode

    old = os.umask(0o027)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: (default_mode(), atomic_write_bytes(
                tmp_path / f"f{k % 16}", b"x" * k)), range(400)))
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o640}


def test_temporary_files_are_owned_per_writer(tmp_path):
    """Only a dead writer's leftover on this host is removed; a live one's, another host's,
    a link and files of other names stay."""
    import subprocess
    import sys

    from atomicio import remove_stale_temps, temp_owner

    # Prepare: a pid that is surely gone (a child that exited and was reaped)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    host = temp_owner().split("-")[0]
    dead = tmp_path / f".out.json.{host}-{child.stdout.strip()}.{'0' * 16}.tmp"
    live = tmp_path / f".out.json.{temp_owner()}.{'1' * 16}.tmp"
    other_host = tmp_path / f".out.json.ffffffff-{child.stdout.strip()}.{'2' * 16}.tmp"
    old_style = tmp_path / ".out.json.abc123.tmp"
    for p in (dead, live, other_host, old_style):
        p.write_text("partial")
    link = tmp_path / f".x.{host}-{child.stdout.strip()}.{'3' * 16}.tmp"
    link.symlink_to(tmp_path / "elsewhere")
    # Execute
    gone = remove_stale_temps(tmp_path)
    # Assert
    assert gone == [dead]
    assert all(p.exists() for p in (live, other_host, old_style)) and link.is_symlink()


def test_a_temporary_name_is_this_writers(tmp_path, monkeypatch):
    """A write in progress is named with this process's owner tag."""
    import atomicio

    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real(src, dst)

    monkeypatch.setattr(atomicio.os, "replace", spy)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert seen[0].startswith(f".a.json.{atomicio.temp_owner()}.") and seen[0].endswith(".tmp")
