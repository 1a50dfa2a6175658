"""Parsing and filtering generated queries: pure functions, checked against hand-worked examples."""

from __future__ import annotations

import pytest

from rerankforge.data_prep.synth_filters import (
    QueryLimits,
    ambiguous,
    as_close_as_source,
    check_query,
    copied_fraction,
    first_occurrences,
    normalized,
    parse_query,
    round_trip,
)


@pytest.mark.parametrize("raw, query", [
    ("What is the role of KLF2 in sepsis?", "What is the role of KLF2 in sepsis?"),
    ("Question: What is the role of KLF2?\n\nAnswer: it regulates", "What is the role of KLF2?"),
    ('  "Does aspirin lower the risk of stroke?"  ', "Does aspirin lower the risk of stroke?"),
    ("Query 1: aspirin   stroke risk.", "aspirin stroke risk."),
    ("1. how do vaccines work?\n2. why", "how do vaccines work?"),
    ("- what is TATA box?", "what is TATA box?"),
    ("Question:\nQ: Does vitamin D lower the risk of falls?\nA: Yes", "Does vitamin D lower the risk of falls?"),
    ("The question is: How is Piezo1 gated?", "How is Piezo1 gated?"),
    ("What is the role of BMP-7? How does BMP-7 act on fibrosis?", "What is the role of BMP-7?"),
])
def test_the_first_line_becomes_the_query_without_labels_or_quotes(raw, query):
    assert parse_query(raw) == (query, None)


@pytest.mark.parametrize("raw", ["", "   \n\n ", "Question:", '""'])
def test_empty_output_is_dropped_as_empty(raw):
    assert parse_query(raw) == (None, "empty")


def test_an_output_cut_by_the_token_limit_is_truncated_unless_it_ended_a_sentence():
    assert parse_query("What is the effect of the", hit_token_limit=True) == (None, "truncated")
    assert parse_query("What is the effect of aspirin?", hit_token_limit=True)[1] is None
    assert parse_query("What is the effect of the", hit_token_limit=False)[1] is None
    # a second line means the first one was finished
    assert parse_query("What is aspirin\nAnswer: a drug that", hit_token_limit=True)[0] == "What is aspirin"
    assert parse_query("Question:\nWhat is the effect of the", hit_token_limit=True) == (None, "truncated")
    # the first question ended before the limit cut a second one
    assert parse_query("What is BMP-7? How does the", hit_token_limit=True) == ("What is BMP-7?", None)


def test_copied_fraction_is_the_longest_shared_word_run_over_the_query_length():
    passage = "Aspirin lowers the risk of stroke in older adults, a trial found."
    assert copied_fraction("aspirin lowers the risk of stroke", passage) == 1.0
    assert copied_fraction("does aspirin lower the risk of stroke", passage) == pytest.approx(4 / 7)  # the risk of stroke
    assert copied_fraction("vaccines and children", passage) == 0.0


def test_check_query_gives_the_reason_in_order():
    limits = QueryLimits(min_words=3, max_words=8, max_copied_fraction=0.75)
    passage = "Aspirin lowers the risk of stroke in older adults, a trial found."
    assert check_query("aspirin stroke", passage, limits) == "too_short"
    assert check_query("one two three four five six seven eight nine", passage, limits) == "too_long"
    assert check_query("aspirin lowers the risk of stroke", passage, limits) == "copies_passage"
    assert check_query("does aspirin lower the risk of stroke?", passage, limits) is None
    # a 3-word query entirely in the passage is short, not a copied sentence: the run must be >= 4 words
    assert check_query("risk of stroke", passage, limits) is None


def test_duplicates_are_compared_normalized_and_the_first_is_kept():
    queries = ["What is aspirin?", "what is  ASPIRIN", "What is ibuprofen?", "What is aspirin?!"]
    assert first_occurrences(queries) == [True, False, True, False]
    assert normalized("What is  ASPIRIN?!") == "what is aspirin"


def test_round_trip_keeps_queries_whose_source_is_within_depth():
    hits = [["d1", "d2", "d3"], ["d9", "d8", "d1"], []]
    assert round_trip(hits, ["d2", "d1", "d1"], depth=2) == [True, False, False]
    assert round_trip(hits, ["d2", "d1", "d1"], depth=3) == [True, True, False]


def test_a_passage_counts_as_close_only_when_it_scores_at_least_the_source_on_every_retriever():
    cosine = [0.70, 0.70, 0.75, 0.69, 0.80]
    bm25 = [12.0, 12.0, 9.0, 15.0, 12.5]
    # passage 1 ties the source (0) on both, 4 beats it on both; 2 wins only on cosine and 3 only on BM25
    assert as_close_as_source([cosine, bm25], 0) == 2
    assert as_close_as_source([cosine], 0) == 3 and as_close_as_source(cosine, 4) == 0
    assert ambiguous([cosine, bm25], 0, max_as_close=1) and not ambiguous([cosine, bm25], 0, max_as_close=2)
    assert not ambiguous([cosine, bm25], 0, max_as_close=None)
    # within 2% of the source's score: 3 (0.69 against 0.70) now counts on cosine, 2 (9 against 12) still not on BM25
    assert as_close_as_source([cosine, bm25], 0, margin=0.02) == 3 and as_close_as_source([bm25], 0, 0.02) == 3
