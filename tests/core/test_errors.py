"""The error family: every user-facing error carries its exit code, and the CLI reports each one the same way."""

import pytest

from rerankforge.cli import main
from rerankforge.core.config import ConfigError, raise_problems
from rerankforge.core.errors import InputError, RerankforgeError, exit_code
from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.synth import SynthError
from rerankforge.models.card_results import CardError
from rerankforge.models.export import ExportError
from rerankforge.models.publish import PushError
from rerankforge.models.resolve import ModelNotFoundError
from rerankforge.quickstart import StageError
from rerankforge.retrieval.download import DatasetNotFoundError
from rerankforge.serve.errors import ServeError


@pytest.mark.parametrize("error, builtin, code", [
    (ConfigError("bad key"), ValueError, 2), (DataError([Problem("bad line")]), ValueError, 2),
    (ModelNotFoundError("no model"), OSError, 2), (DatasetNotFoundError("no data"), FileNotFoundError, 2),
    (CardError("bad report"), ValueError, 2), (ExportError("gate"), RuntimeError, 2),
    (PushError("no token"), RuntimeError, 2), (SynthError("budget spent"), RuntimeError, 1),
    (StageError("train failed", "train", exit_code=2), RuntimeError, 2), (ServeError(400, "bad request"), Exception, 1),
])
def test_every_error_is_one_family_with_its_exit_code_and_its_old_base(error, builtin, code):
    assert isinstance(error, RerankforgeError) and isinstance(error, builtin)
    assert error.exit_code == exit_code(error) == code


def test_a_hint_ends_the_message_and_other_exceptions_get_their_codes():
    assert str(InputError("No corpus at x.", hint="Pass --corpus.")) == "No corpus at x. Pass --corpus."
    assert exit_code(FileNotFoundError("x")) == 2 and exit_code(RuntimeError("bug")) == 1


def test_config_problems_are_raised_together_or_not_at_all():
    raise_problems([])
    with pytest.raises(ConfigError, match=r"Config problems:\n  - a\n  - b"):
        raise_problems(["a", "b"])


def test_the_cli_reports_a_family_error_with_its_own_exit_code(monkeypatch, capsys):
    import rerankforge.models.publish as publish

    def refuse(cfg):
        raise ModelNotFoundError("No model at runs/x/final. Train one first.")

    monkeypatch.setattr(publish, "push", refuse)
    assert main(["push", "--model", "runs/x/final", "--repo-id", "me/x", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == "rerankforge push: error: No model at runs/x/final. Train one first."
