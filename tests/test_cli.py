import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from rerankforge.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_print_config_with_override(capsys):
    assert main(["mine", "--config", str(ROOT / "configs/data_prep/scifact.yaml"), "--print-config", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "seed: 3" in out and "num_negatives: 5" in out


def test_config_error_exits_2_with_message(capsys):
    assert main(["mine", "mining.num_negativs=3"]) == 2
    err = capsys.readouterr().err
    assert "rerankforge mine: error:" in err and "Did you mean 'mining.num_negatives'?" in err


def test_data_error_exits_2_listing_problems(tmp_path, capsys):
    assert main(["mine", f"data.path={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "corpus file not found" in err and "queries file not found" in err


def test_console_script_and_module_entry_points():
    for cmd in (["rerankforge"], [sys.executable, "-m", "rerankforge"], [sys.executable, "-m", "rerankforge.data_prep"]):
        if cmd == ["rerankforge"]:
            cmd = [str(Path(sys.executable).with_name("rerankforge"))]
        args = ["--help"] if "data_prep" in cmd[-1] else ["mine", "--help"]
        out = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "--config" in out.stdout


def test_train_print_config_and_config_problems(capsys):
    assert main(["train", "--config", str(ROOT / "configs/train/scifact-minilm.yaml"), "--print-config"]) == 0
    assert "name: listwise_ce" in capsys.readouterr().out
    assert main(["train", "batch_size=0", "model.max_query_length=300", "optim.warmup_ratio=1.5", "max_steps=0"]) == 2
    err = capsys.readouterr().err
    for expected in ("batch_size must be >= 1, got 0.", "model.max_query_length (300) must be below model.max_length",
                     "optim.warmup_ratio must be in [0, 1), got 1.5.", "max_steps must be >= 1 (or null to train for "
                     "`epochs`), got 0."):
        assert expected in err
    assert main(["train", "loss.name=bce"]) == 2
    assert "expected one of ['listwise_ce', 'pointwise_bce', 'ranknet', 'margin_mse', 'kl_distill']" in \
        capsys.readouterr().err


def test_stage_error_exits_with_one_error_line(monkeypatch, capsys):
    import rerankforge.quickstart as qs

    def fail(cfg):
        raise qs.StageError("the eval stage failed (input: x): RuntimeError: boom. Fix the cause and run the same "
                            "command again: the finished stages (mine, train) are kept and reused. Full traceback: "
                            "runs/quickstart/eval-error.log", "eval")

    monkeypatch.setattr(qs, "quickstart", fail)
    assert main(["quickstart"]) == 1
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and not captured.out
    assert captured.err.startswith("rerankforge quickstart: error: the eval stage failed (input: x): "
                                   "RuntimeError: boom.")


def test_interrupt_exits_130_with_one_line(monkeypatch, capsys):
    import rerankforge.quickstart as qs

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(qs, "quickstart", interrupted)
    assert main(["quickstart"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rerankforge quickstart: interrupted; finished stages are kept")


def test_unexpected_error_is_one_line_with_the_traceback_in_a_file(monkeypatch, capsys, tmp_path):
    import rerankforge.cli as cli
    import rerankforge.quickstart as qs

    def crash(cfg, args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "eval", dataclasses.replace(cli.COMMANDS["eval"], run=crash))
    monkeypatch.delenv("RERANKFORGE_DEBUG", raising=False)
    monkeypatch.setenv(qs.ERROR_LOG_ENV, str(tmp_path / "train-error.log"))  # as the quickstart sets it for train
    assert main(["eval"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("rerankforge eval: error: ZeroDivisionError: division by zero (full traceback: ")
    log = (tmp_path / "train-error.log").read_text()
    assert log.startswith("rerankforge eval: error: ZeroDivisionError: division by zero")
    assert "Traceback (most recent call last)" in log and "in crash" in log

    monkeypatch.setenv("RERANKFORGE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["eval"])


def _outside(tmp_path, *args):
    exe = str(Path(sys.executable).with_name("rerankforge"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_example_configs_list_copy_and_load_outside_a_checkout(tmp_path):
    listed = _outside(tmp_path, "configs")
    assert listed.returncode == 0 and "configs/train/scifact-minilm.yaml" in listed.stdout
    assert "configs/quickstart.yaml" in listed.stdout and "--copy NAME" in listed.stdout
    copied = _outside(tmp_path, "configs", "--copy", "configs/train/scifact-minilm.yaml", "--to", "mine.yaml")
    assert copied.returncode == 0 and (tmp_path / "mine.yaml").read_text() == \
        (ROOT / "configs/train/scifact-minilm.yaml").read_text()
    again = _outside(tmp_path, "configs", "--copy", "train/scifact-minilm.yaml", "--to", "mine.yaml")
    assert again.returncode == 2 and "mine.yaml exists; pass --to another path" in again.stderr
    missing = _outside(tmp_path, "configs", "--copy", "nope.yaml")
    assert missing.returncode == 2
    assert "No example config 'nope.yaml'; `rerankforge configs` lists them." in missing.stderr
    shown = _outside(tmp_path, "train", "--config", "configs/train/scifact-minilm.yaml", "--print-config", "--explain")
    assert shown.returncode == 0 and "name: listwise_ce" in shown.stdout
    lines = shown.stdout.splitlines()
    lr = next(i for i, line in enumerate(lines) if line.strip().startswith("lr:"))
    assert lines[lr - 1].strip().startswith("# ")  # each key under its meaning


def test_help_shows_two_examples_per_command(capsys):
    from rerankforge.cli import COMMANDS

    for name in [*COMMANDS, "configs"]:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        out = capsys.readouterr().out
        examples = out.split("examples:")[1].strip().splitlines()
        assert len(examples) == 2 and all(e.strip().startswith(f"rerankforge {name}") for e in examples), name
