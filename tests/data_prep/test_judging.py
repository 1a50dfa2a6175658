"""The LLM judge in mining: false negatives dropped and counted, every row scored for the teacher, and a rerun
that asks nothing twice."""

from __future__ import annotations

import json
import math
import zlib

import pytest
from conftest import train_cfg
from datasets import load_from_disk

from rerankforge.core.io import MANIFEST
from rerankforge.data_prep.config import MineConfig, MiningConfig
from rerankforge.data_prep.judging import drop_judged
from rerankforge.data_prep.mine import mine
from rerankforge.models.llm import NextToken
from rerankforge.retrieval.config import DataConfig, EncoderConfig, FirstStageConfig


def relevant(passage: str) -> bool:
    """The fake judge's verdict: a fixed, arbitrary third of the passages."""
    return zlib.crc32(passage.encode()) % 3 == 0


class FakeJudgeLLM:
    def __init__(self):
        self.asked = 0

    def next_token(self, prompts, top=20):
        self.asked += len(prompts)
        out = []
        for prompt in prompts:
            p = 0.8 if relevant(prompt.split("Passage: ", 1)[1].split("\n\n")[0]) else 0.1
            out.append(NextToken({"Yes": math.log(p), "No": math.log(1 - p)}, "Yes", 50))
        return out


@pytest.fixture
def fake_llm(monkeypatch) -> FakeJudgeLLM:
    llm = FakeJudgeLLM()
    monkeypatch.setattr("rerankforge.models.judge.load_llm", lambda cfg: llm)
    return llm


def test_drop_judged_keeps_the_first_rows_below_the_threshold():
    logits = {1: 2.0, 2: -2.0, 3: 0.0, 4: -1.0, 5: -3.0}
    assert drop_judged([1, 2, 3, 4, 5], logits, 0.5, keep=2) == ([2, 4], 2)  # P(3) = 0.5 is dropped too
    assert drop_judged([1, 2, 3], logits, None, keep=2) == ([1, 2], 0)


def make_cfg(beir_dir, tmp_path, encoder) -> MineConfig:
    return MineConfig(data=DataConfig(path=str(beir_dir), dev_fraction=0),
                      first_stage=FirstStageConfig("dense", EncoderConfig(name_or_path=encoder, batch_size=8)),
                      mining=MiningConfig(range_max=20, num_negatives=4, relative_margin=None),
                      output_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))


def judge_cfg(beir_dir, tmp_path, encoder):
    cfg = make_cfg(beir_dir, tmp_path, encoder)
    cfg.mining.judge.llm.kind, cfg.mining.judge.llm.base_url, cfg.mining.judge.llm.model = "openai", "http://x/v1", "m"
    return cfg


def test_the_judge_drops_likely_false_negatives_and_scores_every_row(beir_dir, tmp_path, tiny_encoder, fake_llm):
    out = mine(judge_cfg(beir_dir, tmp_path, tiny_encoder))
    ds, manifest = load_from_disk(str(out / "dataset")), json.loads((out / MANIFEST).read_text())
    counts = manifest["counts"]
    candidates = dict(counts["candidates"])
    assert candidates["judged_relevant"] > 0
    assert candidates.pop("total") == sum(candidates.values())  # every candidate has one fate
    assert counts["hard_negatives"] == candidates["selected"]
    assert counts["judge"]["calls"] == fake_llm.asked > 0 and counts["judge"]["failed_unparseable"] == 0
    for row in ds:
        hard = [text for text, kind in zip(row["negatives"], row["negative_kinds"]) if kind == "hard"]
        assert not any(relevant(text) for text in hard)  # the judge's "relevant" never became a hard negative
        assert len(row["negative_judges"]) == len(row["negative_ids"]) == 4
        assert row["positive_judge"] == pytest.approx(math.log(0.8 / 0.2) if relevant(row["positive"])
                                                      else math.log(0.1 / 0.9), abs=1e-5)


def test_mining_again_answers_from_the_judges_journal(beir_dir, tmp_path, tiny_encoder, fake_llm):
    first = json.loads((mine(judge_cfg(beir_dir, tmp_path, tiny_encoder)) / MANIFEST).read_text())["counts"]
    asked = fake_llm.asked
    again = json.loads((mine(judge_cfg(beir_dir, tmp_path, tiny_encoder)) / MANIFEST).read_text())["counts"]
    assert fake_llm.asked == asked and again["judge"]["calls"] == 0
    assert again["judge"]["cached"] == first["judge"]["calls"]
    assert again["candidates"] == first["candidates"]


def test_without_a_threshold_the_judge_only_scores(beir_dir, tmp_path, tiny_encoder, fake_llm):
    cfg = judge_cfg(beir_dir, tmp_path, tiny_encoder)
    cfg.mining.judge.max_probability = None
    plain = load_from_disk(str(mine(make_cfg(beir_dir, tmp_path / "plain", tiny_encoder)) / "dataset"))
    judged = load_from_disk(str(mine(cfg) / "dataset"))
    assert judged["negative_ids"] == plain["negative_ids"]  # spares unused: the same negatives as without a judge
    assert "negative_judges" in judged.column_names and "negative_judges" not in plain.column_names


def test_training_reads_the_judge_as_its_teacher(beir_dir, tmp_path, tiny_encoder, tiny_cross_encoder, fake_llm):
    from rerankforge.models.fusion import zscore
    from rerankforge.train.data import load_groups

    out = mine(judge_cfg(beir_dir, tmp_path, tiny_encoder))
    row = load_from_disk(str(out / "dataset"))[0]
    groups, counts = load_groups(train_cfg(out, beir_dir, tiny_cross_encoder, tmp_path / "o", "data.group_size=3",
                                           "loss.teacher=judge", "loss.distill=kl_distill"))
    assert counts["has_teacher"]
    judged = (row["positive_judge"], *row["negative_judges"][:2])
    assert groups[0].teacher == pytest.approx(zscore(judged).tolist())  # log-odds on one scale per group
