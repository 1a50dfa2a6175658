"""Progress bars print a line every ~10 s when stderr is not a terminal (one per update otherwise)."""

import io
import os
import subprocess
import sys
import time
from functools import partialmethod

import pytest
import tqdm.std as tqdm_std
from tqdm.auto import tqdm

from rerankforge.core import progress as P


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _lines(run) -> int:
    """How many progress lines a ~0.5 s loop of quick updates writes to a non-TTY stream."""
    out = io.StringIO()
    for _ in run(out):
        time.sleep(0.001)
    return len([line for line in out.getvalue().replace("\r", "\n").split("\n") if line.strip()])


@pytest.fixture
def clean(monkeypatch):
    """tqdm's own defaults (an earlier `rerankforge` main() in this session may have quietened them), restored
    afterwards."""
    monkeypatch.delenv(P.ENV, raising=False)
    init = tqdm_std.tqdm.__dict__["__init__"]
    monkeypatch.setattr(tqdm_std.tqdm, "__init__", partialmethod(
        init.func, **{k: v for k, v in init.keywords.items() if k != "mininterval"}))


def test_not_a_tty_prints_few_progress_lines(clean):
    loop = lambda out: tqdm(range(400), file=out)  # noqa: E731  (another library's bar)
    assert _lines(loop) >= 3  # tqdm's default: a line every 0.1 s
    assert P.quiet_progress_when_not_a_tty(io.StringIO()) is True
    assert os.environ[P.ENV] == "10"
    assert _lines(loop) <= 2  # the first and the last
    # processes we start read the env var
    code = ("import io, time, tqdm\nout = io.StringIO()\nfor _ in tqdm.tqdm(range(400), file=out): time.sleep(0.001)\n"
            "print(out.getvalue().count(chr(13)))")
    assert int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout) <= 2


def test_a_terminal_or_the_users_setting_is_left_alone(clean, monkeypatch):
    assert P.quiet_progress_when_not_a_tty(FakeTTY()) is False and P.ENV not in os.environ
    monkeypatch.setenv(P.ENV, "0.5")
    assert P.quiet_progress_when_not_a_tty(io.StringIO()) is False
    assert os.environ[P.ENV] == "0.5"
    assert "mininterval" not in tqdm_std.tqdm.__dict__["__init__"].keywords
