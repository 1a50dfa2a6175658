from collections import Counter

import numpy as np
import pytest
from conftest import train_cfg

from rerankforge.train.data import Group, GroupCollator, length_grouped_batches, load_groups


def test_length_grouped_batches_cover_every_index_once_and_pad_little():
    lengths = [((i * 37) % 101) for i in range(200)]
    batches = length_grouped_batches(lengths, batch_size=8, seed=1, mega=5)
    assert Counter(i for b in batches for i in b) == Counter(range(200))
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=1, mega=5)
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=2, mega=5)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 25  # random batches of 8 over 0..100 spread ~75


def test_collator_truncates_the_passage_never_the_short_query(tiny_cross_encoder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    collator = GroupCollator(tokenizer, max_length=24, max_query_length=8)
    query = "cat sat on mat"
    batch = collator([Group("q", query, ("the cat " * 40, "dogs"), None)])
    assert batch["input_ids"].shape == (2, 24)
    first = tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True)
    assert first.startswith(query)
    long_query = "cat " * 30
    cut = GroupCollator(tokenizer, 24, 8)([Group("q", long_query, ("the mat",), None)])
    decoded = tokenizer.decode(cut["input_ids"][0], skip_special_tokens=True)
    assert decoded.endswith("the mat") and decoded.count("cat") == 8


def test_groups_from_mining_output(mined, beir_dir, tmp_path, tiny_cross_encoder, caplog):
    groups, counts = load_groups(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "o", "data.group_size=3"))
    assert counts["groups"] == 8 and all(len(g.passages) == 3 for g in groups)
    assert groups[0].teacher is None  # no rescoring in the tiny mining run; first-stage teacher on request
    groups, counts = load_groups(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "o", "data.group_size=9",
                                           "loss.teacher=first_stage"))
    assert counts["groups"] == 0 and counts["rows_short"] == 8
    assert "8 of 8 rows have fewer than 8 negatives" in caplog.text


def test_missing_mining_output_says_what_to_run(tmp_path, beir_dir, tiny_cross_encoder):
    with pytest.raises(FileNotFoundError, match="is not a finished `rerankforge mine` output"):
        load_groups(train_cfg(tmp_path / "nothing", beir_dir, tiny_cross_encoder, tmp_path / "o"))


def test_a_hybrid_first_stage_teaches_with_its_dense_and_bm25_scores(mined_dev, tmp_path, tiny_cross_encoder):
    from datasets import load_from_disk

    from rerankforge.models.fusion import zscore
    from rerankforge.train.data import first_stage_teacher

    beir, mined = mined_dev
    rows = load_from_disk(str(mined / "dataset"))
    assert {"positive_lexical", "negative_lexical"} <= set(rows.column_names)
    row = rows[0]
    assert len(row["negative_lexical"]) == len(row["negatives"])
    assert row["positive_lexical"] > min(row["negative_lexical"])  # BM25 scores, not copies of the cosines
    groups, counts = load_groups(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "o", "data.group_size=4",
                                           "loss.teacher=first_stage", "loss.distill=kl_distill"))
    dense = (row["positive_score"], *row["negative_scores"][:3])
    lexical = (row["positive_lexical"], *row["negative_lexical"][:3])
    assert counts["has_teacher"] and groups[0].teacher == pytest.approx(first_stage_teacher(dense, lexical))
    assert first_stage_teacher(dense, lexical) == pytest.approx((zscore(dense) + zscore(lexical)).tolist())
    plain, _ = load_groups(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "o", "data.group_size=4"))
    assert plain[0].teacher is None  # a label loss alone reads no teacher


def test_a_single_first_stage_teaches_on_one_scale_whatever_its_scores(mined, beir_dir, tmp_path, tiny_cross_encoder):
    from datasets import load_from_disk

    from rerankforge.train.data import first_stage_teacher

    row = load_from_disk(str(mined / "dataset"))[0]
    groups, counts = load_groups(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "o", "data.group_size=3",
                                           "loss.teacher=first_stage", "loss.distill=kl_distill"))
    scores = np.array((row["positive_score"], *row["negative_scores"][:2]))
    assert counts["has_teacher"]
    assert groups[0].teacher == pytest.approx(((scores - scores.mean()) / scores.std()).tolist())
    # cosines (span ~0.3) and BM25 scores (tens) teach alike: the order and the spread in standard deviations
    assert first_stage_teacher(scores * 40 + 3) == pytest.approx(first_stage_teacher(scores))
