"""`tfresnet.files`: whole files or none, with the permissions any other file would get."""

import os
import pathlib
import stat

import pytest

from tfresnet.files import write_atomic, write_json_atomic


def test_text_bytes_and_writer_functions_land_whole_with_the_umasks_permissions(tmp_path):
    write_atomic(str(tmp_path / "a" / "t.txt"), "text")
    write_atomic(str(tmp_path / "b.bin"), b"\x00\x01")
    write_atomic(str(tmp_path / "c.txt"), lambda path: pathlib.Path(path).write_text("by a writer"))
    write_json_atomic(str(tmp_path / "d.json"), {"k": 1}, indent=2)
    assert (tmp_path / "a" / "t.txt").read_text() == "text" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.txt").read_text() == "by a writer" and '"k": 1' in (tmp_path / "d.json").read_text()
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(os.stat(tmp_path / "d.json").st_mode)
    assert mode == 0o666 & ~umask  # as open() would make it, not mkstemp's private 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "c.txt", "d.json"]  # no partials


def test_a_failing_writer_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "keep.txt"
    write_atomic(str(target), "old")

    def broken(path):
        pathlib.Path(path).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(str(target), broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
