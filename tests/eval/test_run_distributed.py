"""Two CPU processes (`accelerate launch --multi_gpu --num_processes 2 -m rerankforge eval` on a machine without a
GPU) evaluate each a share of the queries and write the report of one process: the same runs."""

import json
import os
import subprocess
import sys

import pytest
from conftest import eval_cfg

from rerankforge.core.config import dump_yaml
from rerankforge.eval.report import read_trec

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--num_processes", "2"]


@pytest.mark.slow
def test_two_processes_evaluate_what_one_process_evaluates(tmp_path, tiny_encoder, tiny_cross_encoder):
    from conftest import make_beir

    beir = make_beir(tmp_path / "beir", n_docs=60, n_test=6)
    config = tmp_path / "eval.yaml"
    config.write_text(dump_yaml(eval_cfg(beir, tiny_encoder, tiny_cross_encoder, tmp_path / "unused")), "utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for n, launcher in ((1, [sys.executable]), (2, LAUNCH)):
        out = subprocess.run(launcher + ["-m", "rerankforge", "eval", "--config", str(config),
                                         f"output_dir={tmp_path / f'out{n}'}", f"cache_dir={tmp_path / f'cache{n}'}"],
                             capture_output=True, text=True, timeout=600, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
    runs = [{name: read_trec(tmp_path / f"out{n}" / "runs" / f"{name}.trec") for name in ("first_stage", "tiny")}
            for n in (1, 2)]
    assert runs[0] == runs[1] and len(runs[0]["tiny"]) == 6
    assert [json.loads((tmp_path / f"out{n}" / "manifest.json").read_text())["processes"] for n in (1, 2)] == [1, 2]
