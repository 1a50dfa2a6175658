"""Progress bars that stay readable in a log file.

On a terminal a tqdm bar redraws itself in place; written to a file or a pipe, each redraw is a new line, so a
long run leaves thousands of progress lines in its log. ``quiet_progress_when_not_a_tty`` makes every bar (ours,
and those of sentence-transformers, datasets, bm25s, ... which all use tqdm) print about one line every
``QUIET_INTERVAL_S`` seconds instead, in this process and in the processes it starts.
"""

from __future__ import annotations

import os
import sys
from functools import partialmethod
from typing import IO, Optional

QUIET_INTERVAL_S = 10.0
ENV = "TQDM_MININTERVAL"  # tqdm >= 4.66 reads TQDM_<ARG> env vars as the default of every bar's <arg>


def quiet_progress_when_not_a_tty(stream: Optional[IO] = None, interval: float = QUIET_INTERVAL_S) -> bool:
    """When ``stream`` (default stderr) is not a terminal and the user has not set ``TQDM_MININTERVAL``, set it
    to ``interval`` seconds. Returns whether it did.

    tqdm reads its env vars once, when ``tqdm`` is first imported; the env var reaches the subprocesses we
    start and a tqdm imported later. A tqdm that is already imported gets the same default directly."""
    stream = sys.stderr if stream is None else stream
    try:
        is_tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        is_tty = False
    if is_tty or ENV in os.environ:
        return False
    os.environ[ENV] = f"{interval:g}"
    if "tqdm.std" in sys.modules:
        _set_default_mininterval(sys.modules["tqdm.std"].tqdm, interval)
    return True


def _set_default_mininterval(cls: type, interval: float) -> None:
    """Change the default ``mininterval`` of ``cls`` (``tqdm.std.tqdm``: every tqdm class calls its __init__);
    an explicit ``mininterval=`` still wins."""
    init = cls.__dict__.get("__init__")
    if isinstance(init, partialmethod):  # what tqdm's envwrap installs
        func, keywords = init.func, dict(init.keywords)
    elif init is not None:
        func, keywords = init, {}
    else:
        return
    keywords["mininterval"] = interval
    cls.__init__ = partialmethod(func, **keywords)
