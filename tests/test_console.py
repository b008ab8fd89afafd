"""Progress output: Keras' animated bars (ANSI codes, backspaces) only on a terminal."""

import io

from tests.data import fakes
from tfresnet.cli import main
from tfresnet.console import progress_verbose


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal():
    assert progress_verbose(1, _Terminal()) == 1
    assert progress_verbose(1, io.StringIO()) == 2  # one plain line when done
    assert progress_verbose(0, io.StringIO()) == 0 and progress_verbose(2, _Terminal()) == 2


def test_scan_data_progress_in_a_pipe_is_plain_lines(tmp_path, capsys):
    fakes.write_class_folders(tmp_path / "animals", {"cat": 3, "dog": 3})
    assert main(["scan-data", str(tmp_path / "animals"), "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert "6/6" in captured.err  # the bar's final line
    assert "\x1b[" not in captured.err + captured.out and "\b" not in captured.err
