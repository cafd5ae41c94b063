"""The one file reader, the checks on a path typed for writing, and the atomic writer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from backprop_tui.engine.files import (
    FileRefused,
    atomic_write_text,
    read_limited,
    remove_stale_temporaries,
    write_target,
)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


# ---------------------------------------------------------------- reading


def test_a_regular_file_is_read_whole_up_to_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_limited(path, 100) == b"x" * 100
    with pytest.raises(FileRefused, match="file is 100 bytes; the limit is 99"):
        read_limited(path, 99)


@pytest.mark.parametrize("device, kind", [("/dev/zero", "a character device"), ("/dev/urandom", "a character device"),
                                          ("/dev/null", "a character device")])
def test_a_device_is_refused_before_a_byte_is_read(device, kind):
    with pytest.raises(FileRefused, match=f"not a regular file but {kind}"):
        read_limited(device, 1000)


def test_a_fifo_is_refused_without_blocking(fifo):
    """Nobody writes to the FIFO: opening it for reading in the usual way would wait forever."""
    with pytest.raises(FileRefused, match=r"not a regular file but a FIFO \(named pipe\)"):
        read_limited(fifo, 1000)


def test_a_symlink_to_a_device_and_a_folder_are_refused(tmp_path):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(FileRefused, match="a character device"):
        read_limited(link, 1000)
    with pytest.raises(FileRefused, match="a folder"):
        read_limited(tmp_path, 1000)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileRefused, match="cannot read file: No such file or directory"):
        read_limited(tmp_path / "nothing", 10)


def test_a_file_that_grows_past_its_stat_size_is_cut_at_the_limit(tmp_path, monkeypatch):
    """The size the file claims is not trusted: at most limit + 1 bytes are read."""
    path = tmp_path / "growing"
    path.write_bytes(b"y" * 50)
    real_fstat = os.fstat

    class Small:
        def __init__(self, info):
            self.st_mode, self.st_size = info.st_mode, 1

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(FileRefused, match="more than 10 bytes"):
        read_limited(path, 10)
    assert sum(reads) <= 11


# ---------------------------------------------------------------- where to write


@pytest.mark.parametrize("text, message", [
    (".", "type a file name, not a folder"),
    ("/", "type a file name, not a folder"),
    ("~", "type a file name, not a folder"),
    ("sub/", "type a file name, not a folder"),
    ("..", "type a file name, not a folder"),
    ("~nosuchuser_backprop/x", "~nosuchuser_backprop: no such user"),
    ("a" * 300, "the file name is too long"),
    ("missing/x.md", "the folder .*missing does not exist"),
])
def test_paths_that_cannot_be_written_are_one_line(tmp_path, text, message):
    with pytest.raises(FileRefused, match=message):
        write_target(text, tmp_path)


def test_special_files_and_symlinks_are_not_replaced(tmp_path, fifo):
    link = tmp_path / "link.md"
    (tmp_path / "real.md").write_text("kept")
    link.symlink_to(tmp_path / "real.md")
    with pytest.raises(FileRefused, match=r"is a FIFO \(named pipe\); only a regular file is replaced"):
        write_target(fifo)
    with pytest.raises(FileRefused, match="is a character device"):
        write_target("/dev/null")
    with pytest.raises(FileRefused, match="is a symbolic link"):
        write_target(link)
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileRefused, match="is a folder"):
        write_target("folder", tmp_path)
    assert write_target("x.md", tmp_path) == tmp_path / "x.md"
    assert write_target("real.md", tmp_path) == tmp_path / "real.md"  # existing: the caller asks first


def test_a_deleted_working_directory_is_one_line(tmp_path):
    script = textwrap.dedent(
        """
        import os
        from backprop_tui.engine.files import FileRefused, write_target
        os.chdir(os.environ["GONE"]); os.rmdir(os.environ["GONE"])
        try:
            write_target("x.md")
        except FileRefused as exc:
            print(exc)
        print(write_target(os.environ["ABS"]))
        """
    )
    gone = tmp_path / "gone"
    gone.mkdir()
    env = {**os.environ, "GONE": str(gone), "ABS": str(tmp_path / "y.md")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["the current folder no longer exists; type an absolute path",
                                          str(tmp_path / "y.md")]


# ---------------------------------------------------------------- the atomic writer


def test_an_overwritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("old")
    path.chmod(0o644)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)
    atomic_write_text(path, "newer")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_new_file_gets_the_umask_and_a_private_one_0600(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.md", "x")
        atomic_write_text(tmp_path / "private.json", "x", private=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.md").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


def test_the_writer_refuses_a_fifo_that_appeared_after_the_check(fifo):
    with pytest.raises(OSError, match="only a regular file is replaced"):
        atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_missing_folder_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "x.md", "x")
    assert not (tmp_path / "missing").exists()


def test_stale_temporaries_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".notes.md.{dead_pid}-abc123_x.bptmp"
    mine = tmp_path / f".notes.md.{os.getpid()}-abc123_x.bptmp"
    others = [tmp_path / ".notes.md.abc.tmp", tmp_path / "notes.md", tmp_path / f"x.{dead_pid}-abc.bptmp"]
    for path in [stale, mine, *others]:
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [mine, *others])
