"""Two CPU processes (`accelerate launch --multi_gpu --num_processes 2 -m rerankforge.data_prep` on a machine without
a GPU: torchrun, one gloo group) mine the same embeddings, byte for byte, and the same training set as one process.
(`accelerate launch --cpu --num_processes 2` starts several processes only through MPI's mpirun.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_beir
from datasets import load_from_disk

from rerankforge.core.config import dump_yaml
from rerankforge.data_prep.config import MineConfig, MiningConfig
from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.mark.slow
def test_two_processes_mine_what_one_process_mines(tmp_path, tiny_encoder):
    # 300 passages in chunks of 4 * 16: five chunks to share; 12 training queries to share
    beir = make_beir(tmp_path / "beir", n_docs=300, n_train=12)
    cfg = MineConfig(data=DataConfig(path=str(beir), dev_fraction=0.25, dev_min_queries=1, storage="arrow"),
                     first_stage=FirstStageConfig("hybrid", EncoderConfig(name_or_path=tiny_encoder, batch_size=4)),
                     mining=MiningConfig(range_max=20, num_negatives=4, random_negatives=2))
    config = tmp_path / "mine.yaml"
    config.write_text(dump_yaml(cfg), encoding="utf-8")
    # one thread per process in both runs: the test is about how work is split, not about BLAS threading
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for n in (1, 2):
        out = subprocess.run((LAUNCH if n > 1 else [sys.executable]) + ["--num_processes", str(n)] * (n > 1) + ["-m", "rerankforge.data_prep", "--config",
                                       str(config), f"output_dir={tmp_path / f'out{n}'}",
                                       f"cache_dir={tmp_path / f'cache{n}'}"],
                             capture_output=True, text=True, timeout=600, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
    embeddings = [sorted((tmp_path / f"cache{n}" / "embeddings").glob("corpus-*.npy")) for n in (1, 2)]
    assert len(embeddings[0]) == 1 and [p.name for p in embeddings[0]] == [p.name for p in embeddings[1]]
    assert embeddings[0][0].read_bytes() == embeddings[1][0].read_bytes()
    one, two = (Path(tmp_path / f"out{n}") for n in (1, 2))
    assert load_from_disk(str(one / "dataset")).to_list() == load_from_disk(str(two / "dataset")).to_list()
    assert (one / "dev.jsonl").read_bytes() == (two / "dev.jsonl").read_bytes()
    assert [json.loads((o / "manifest.json").read_text())["processes"] for o in (one, two)] == [1, 2]
    assert not list((tmp_path / "cache2" / "embeddings").glob(".*partial*"))  # no scratch file is left behind
