"""Reading a judge's answers: yes/no log-odds, RankGPT permutations and sliding windows (pure)."""

import math

import pytest

from rerankforge.models.judge_parse import (
    TEXT_LOGIT,
    JudgeParseError,
    listwise_scores,
    parse_permutation,
    sliding_windows,
    yes_no_logit,
)


def test_yes_no_logit_sums_every_spelling_of_each_word():
    logprobs = {"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.2), "The": math.log(0.4)}
    assert yes_no_logit(logprobs) == pytest.approx(math.log(0.4 / 0.2))


def test_a_word_missing_from_the_top_tokens_counts_as_the_least_likely_of_them():
    logprobs = {"yes": math.log(0.6), "Maybe": math.log(0.05), "I": math.log(0.2)}
    assert yes_no_logit(logprobs) == pytest.approx(math.log(0.6 / 0.05))


def test_without_logprobs_the_reply_text_decides():
    assert yes_no_logit({}, "Yes, it does.") == TEXT_LOGIT
    assert yes_no_logit({}, " no.") == -TEXT_LOGIT


def test_an_answer_with_neither_word_is_unparseable():
    with pytest.raises(JudgeParseError, match="expected yes or no"):
        yes_no_logit({"Perhaps": -0.1, "I": -2.0}, "Perhaps")
    with pytest.raises(JudgeParseError):
        yes_no_logit({}, "")


@pytest.mark.parametrize("text, order", [
    ("[2] > [3] > [1]", [1, 2, 0]),
    ("The ranking is: [3] > [1] > [3] > [2]. I hope this helps!", [2, 0, 1]),  # prose and a duplicate
    ("[2] > [9] > [0]", [1, 0, 2]),  # ids out of range are skipped; missing ids follow in the order shown
    ("3, 1", [2, 0, 1]),  # bare numbers when there are no brackets
    ("Passage [2] is the best; step 1 is [3]", [1, 2, 0]),  # brackets win over bare numbers
])
def test_parse_permutation_survives_duplicates_missing_ids_and_prose(text, order):
    assert parse_permutation(text, 3) == order


def test_a_permutation_without_any_id_is_unparseable():
    with pytest.raises(JudgeParseError, match="ids 1..3"):
        parse_permutation("I cannot rank these passages.", 3)
    with pytest.raises(JudgeParseError):
        parse_permutation("[7] > [8]", 3)


def test_sliding_windows_go_from_the_bottom_to_the_top():
    assert sliding_windows(50, 20, 10) == [(30, 50), (20, 40), (10, 30), (0, 20)]
    assert sliding_windows(25, 20, 10) == [(5, 25), (0, 15)]
    assert sliding_windows(20, 20, 10) == [(0, 20)]
    assert sliding_windows(3, 20, 10) == [(0, 3)]


def test_listwise_scores_sort_as_the_order():
    assert listwise_scores([2, 0, 1]) == [2.0, 1.0, 3.0]
