"""SQuAD-style answer metrics, by hand (the official v1.1 definitions)."""

import pytest

from rerankforge.eval.answers import answer_in_context, exact_match, normalize_answer, token_f1


def test_normalization_drops_case_punctuation_articles_and_extra_spaces():
    assert normalize_answer("  The Cat,  sat!  an apple ") == "cat sat apple"


def test_exact_match_against_any_gold():
    assert exact_match("Cat sat.", ["dog", "the cat sat"]) == 1.0
    assert exact_match("cat sat down", ["the cat sat"]) == 0.0


def test_token_f1_is_the_best_over_golds():
    # pred {cat, sat, on, mat} vs gold {cat, sat}: P = 2/4, R = 1 -> F1 = 2/3
    assert token_f1("the cat sat on the mat", ["a dog", "a cat sat"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", ["cat"]) == 0.0
    assert token_f1("anything", []) == 0.0


def test_answer_in_context_is_a_normalised_substring_match():
    passages = ["Mother-to-child transmission (MTCT) is the main cause.", "Other text."]
    assert answer_in_context(passages, ["mother-to-child transmission (MTCT)"]) == 1.0
    assert answer_in_context(passages, ["placental DC-SIGNR"]) == 0.0
    assert answer_in_context(passages, ["   "]) == 0.0
