"""The length check: token lengths of queries and documents against what the reranker reads, and its advice."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import WORDS

from rerankforge.data_prep.lengths import (
    LengthStats,
    budgets,
    length_advice,
    length_stats,
    measure_lengths,
    percentile,
    should_chunk,
)
from rerankforge.models.pairs import PairLimits, encode_pairs

KEYS = {"chunking": "mine.data.chunking.mode", "max_length": "train.model.max_length",
        "max_query_length": "train.model.max_query_length"}


@pytest.fixture(scope="module")
def tokenizer(tiny_cross_encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_cross_encoder)


def words(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(n))


@pytest.mark.parametrize("q", [0, 37, 50, 95, 100])
def test_percentile_is_numpys_nearest_rank(q):
    values = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11]
    assert percentile(values, q) == int(np.percentile(values, q, method="inverted_cdf"))


def test_stats_count_what_lies_past_the_budget():
    stats = length_stats([10, 20, 30, 40], budget=25)
    assert (stats.median, stats.p95, stats.cut) == (20, 40, 0.5)
    assert stats.unseen == pytest.approx((5 + 15) / 100)
    assert length_stats([], 10) == LengthStats(0, 0, 0, 10, 0.0, 0.0)


@pytest.mark.parametrize("query_words, max_query_length", [(3, 64), (60, 16), (200, 500)])
def test_budgets_are_what_the_pair_encoder_keeps(tokenizer, query_words, max_query_length):
    query, doc = words(query_words), words(3000, offset=5)
    inputs, _ = encode_pairs(tokenizer, [(query, doc)], PairLimits(max_length=96, max_query_length=max_query_length))
    kept_query = inputs[0]["token_type_ids"].count(0) - 2  # [CLS] query [SEP]
    kept_doc = inputs[0]["token_type_ids"].count(1) - 1  # doc [SEP]
    query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    query_budget, doc_budget = budgets(96, max_query_length, tokenizer.num_special_tokens_to_add(pair=True),
                                       query_tokens)
    assert min(query_tokens, query_budget) == kept_query and doc_budget == kept_doc


def test_measured_lengths_say_what_share_is_never_seen(tokenizer):
    documents = [words(40 * (i % 5 + 1), i) for i in range(50)]
    queries = [words(5, i) for i in range(20)]
    stats = measure_lengths(tokenizer, queries, documents, max_length=64, max_query_length=16)
    lengths = [len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in documents]
    assert stats["documents"].median == percentile(lengths, 50) and stats["documents"].sampled == 50
    assert stats["documents"].budget == 64 - 3 - 5
    assert stats["queries"].cut == 0 and stats["documents"].cut == pytest.approx(
        sum(n > 56 for n in lengths) / 50)


def test_long_documents_get_one_message_naming_chunking_and_long_queries_one_naming_the_query_limit():
    long_docs = LengthStats(100, 5000, 9000, 189, 1.0, 0.96)
    short_queries = LengthStats(100, 12, 30, 64, 0.0, 0.0)
    messages = length_advice({"documents": long_docs, "queries": short_queries}, KEYS)
    assert should_chunk(long_docs) and len(messages) == 1
    assert "mine.data.chunking.mode=all" in messages[0] and "median 5,000 tokens, p95 9,000" in messages[0]
    assert "96% of their text is never seen" in messages[0]
    turned_on = length_advice({"documents": long_docs, "queries": short_queries}, KEYS, chunking_on=True)
    assert "chunking is on" in turned_on[0] and "mine.data.chunking.mode=off" in turned_on[0]
    long_queries = LengthStats(100, 120, 400, 64, 0.9, 0.5)
    fitting = LengthStats(100, 150, 250, 189, 0.1, 0.02)
    messages = length_advice({"documents": fitting, "queries": long_queries}, KEYS)
    assert len(messages) == 1 and "train.model.max_query_length" in messages[0] and not should_chunk(fitting)
