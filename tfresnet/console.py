"""Progress output that suits where it goes: Keras' animated bars on a terminal, plain lines in a
pipe or a file.

Keras' `Progbar` at ``verbose=1`` (what `fit` shows) redraws itself with backspaces, carriage
returns and ANSI colour codes whether or not its stream is a terminal (it counts every POSIX
process as one), which fills logs with escape sequences. At ``verbose=2`` it writes one plain line
when done (`fit`: one line per epoch).
"""

from __future__ import annotations

import sys

__all__ = ["is_terminal", "progress_verbose"]


def is_terminal(stream=None) -> bool:
    """Whether `stream` (default ``sys.stdout``) is a terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_verbose(verbose: int, stream=None) -> int:
    """The Keras ``verbose`` to use for `stream` (default ``sys.stdout``): 1 (an animated bar)
    becomes 2 (plain lines) when the stream is not a terminal; other values are kept."""
    return 2 if verbose == 1 and not is_terminal(stream) else verbose
