import random
from collections import Counter

import pytest

from rerankforge.data_prep.negatives import FATES, SelectionOptions, sample_easy_negatives, select_negatives

IDS = ["p", "a", "b", "c", "d", "e"]
SCORES = [0.9, 0.88, 0.8, 0.7, 0.6, 0.5]


def chosen_ids(selection):
    return [IDS[i] for i in selection.indices]


def test_top_excludes_positives_and_keeps_rank_order():
    sel = select_negatives(IDS, SCORES, {"p"}, 0.9, SelectionOptions(num_negatives=3))
    assert chosen_ids(sel) == ["a", "b", "c"]
    assert sel.fates["positive"] == 1 and sel.fates["selected"] == 3 and sel.fates["not_sampled"] == 2


def test_fates_always_sum_to_candidates():
    opts = SelectionOptions(num_negatives=2, range_min=1, range_max=4, relative_margin=0.05, min_score=0.55)
    sel = select_negatives(IDS, SCORES, {"p"}, 0.9, opts)
    assert set(sel.fates) == set(FATES)
    assert sum(sel.fates.values()) == len(IDS)


def test_range_counts_ranks_among_non_positives():
    # ranks of non-positives: a=1, b=2, c=3, d=4, e=5; window (1, 3] keeps b, c
    sel = select_negatives(IDS, SCORES, {"p"}, 0.9, SelectionOptions(num_negatives=5, range_min=1, range_max=3))
    assert chosen_ids(sel) == ["b", "c"]
    assert sel.fates["outside_range"] == 3


def test_absolute_margin_drops_candidates_too_close_to_positive():
    sel = select_negatives(IDS, SCORES, {"p"}, 0.9, SelectionOptions(num_negatives=5, absolute_margin=0.15))
    # keep score + 0.15 <= 0.9  ->  score <= 0.75
    assert chosen_ids(sel) == ["c", "d", "e"]
    assert sel.fates["absolute_margin"] == 2


def test_relative_margin_uses_positive_magnitude_for_negative_scores():
    ids, scores = ["x", "y", "z"], [-0.9, -1.04, -1.2]
    # positive -1.0 with 5%: threshold = -1.0 - 0.05 = -1.05; keep scores <= -1.05
    sel = select_negatives(ids, scores, set(), -1.0, SelectionOptions(num_negatives=3, relative_margin=0.05))
    assert [ids[i] for i in sel.indices] == ["z"]
    assert sel.fates["relative_margin"] == 2


def test_max_and_min_score():
    opts = SelectionOptions(num_negatives=5, max_score=0.85, min_score=0.55)
    sel = select_negatives(IDS, SCORES, {"p"}, 0.9, opts)
    assert chosen_ids(sel) == ["b", "c", "d"]
    assert sel.fates["max_score"] == 1 and sel.fates["min_score"] == 1


def test_random_sampling_is_seeded_and_sorted_by_rank():
    opts = SelectionOptions(num_negatives=2, sampling_strategy="random")
    first = select_negatives(IDS, SCORES, {"p"}, 0.9, opts, random.Random(3))
    again = select_negatives(IDS, SCORES, {"p"}, 0.9, opts, random.Random(3))
    assert first.indices == again.indices
    assert first.indices == sorted(first.indices) and "p" not in chosen_ids(first)
    draws = Counter(tuple(select_negatives(IDS, SCORES, {"p"}, 0.9, opts, random.Random(s)).indices)
                    for s in range(50))
    assert len(draws) > 3  # really random, not the top


def test_fewer_candidates_than_asked_returns_what_there_is():
    sel = select_negatives(["p", "a"], [0.9, 0.1], {"p"}, 0.9, SelectionOptions(num_negatives=7))
    assert [["p", "a"][i] for i in sel.indices] == ["a"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(candidate_ids=["a"], scores=[0.1, 0.2]), "candidate_ids has 1 items but scores has 2"),
    (dict(options=SelectionOptions(relative_margin=0.1), positive_score=None), "need the positive's score"),
    (dict(options=SelectionOptions(sampling_strategy="random")), "needs an rng"),
])
def test_errors(kwargs, message):
    args = dict(candidate_ids=["a", "b"], scores=[0.2, 0.1], positive_ids=set(), positive_score=0.5,
                options=SelectionOptions(), rng=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        select_negatives(**args)


def test_inputs_are_not_mutated():
    ids, scores, positives = list(IDS), list(SCORES), {"p"}
    select_negatives(ids, scores, positives, 0.9, SelectionOptions(num_negatives=2, relative_margin=0.05))
    assert ids == IDS and scores == SCORES and positives == {"p"}


@pytest.mark.parametrize("corpus_size", [10, 1000])  # explicit-remainder and rejection-sampling paths
def test_easy_negatives_are_distinct_excluded_and_seeded(corpus_size):
    corpus = [f"d{i}" for i in range(corpus_size)]
    exclude = {"d0", "d1", "d2"}
    got = sample_easy_negatives(corpus, exclude, 4, random.Random(1))
    assert len(got) == len(set(got)) == 4 and not set(got) & exclude
    assert got == sample_easy_negatives(corpus, exclude, 4, random.Random(1))


def test_easy_negatives_when_corpus_runs_out():
    assert sorted(sample_easy_negatives(["a", "b", "c"], {"a"}, 5, random.Random(0))) == ["b", "c"]
    assert sample_easy_negatives(["a"], set(), 0, random.Random(0)) == []


def test_given_negatives_are_never_chosen_again_and_take_no_rank():
    # given "a": ranks of the others are b=1, c=2, ...; window (0, 2] keeps b and c
    sel = select_negatives(IDS, SCORES, {"p"}, None, SelectionOptions(num_negatives=5, range_max=2),
                           given_ids={"a"})
    assert chosen_ids(sel) == ["b", "c"] and sel.fates["given"] == 1 and sum(sel.fates.values()) == len(IDS)


@pytest.mark.parametrize("corpus_size, range_max, expected", [(1000, 2000, 500), (5183, 2000, 2000), (12, 2000, 7),
                                                               (100, 30, 30)])
def test_the_window_leaves_half_of_a_small_corpus_for_random_negatives(corpus_size, range_max, expected):
    from rerankforge.data_prep.negatives import fit_window

    options = SelectionOptions(num_negatives=7, range_max=range_max)
    assert fit_window(options, corpus_size).range_max == expected  # never below range_min + num_negatives
