"""The one pair encoder: no length of query or passage fails; query cut first, on token ids; windows for MaxP."""

from __future__ import annotations

import pytest
from conftest import WORDS

from rerankforge.models.pairs import PairLimits, encode_pairs, pad_inputs


@pytest.fixture(scope="module")
def tokenizer(tiny_cross_encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_cross_encoder)


def words(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(n))


LONG_QUERY = words(2000)
LONG_DOC = words(20000, offset=3)  # ~100 KB


def test_short_pairs_match_the_tokenizers_own_pair_encoding(tokenizer):
    pairs = [("the cat sat", "on the mat with a dog"), ("gene risk", "cancer " * 80)]
    inputs, owners = encode_pairs(tokenizer, pairs, PairLimits(max_length=40))
    expected = tokenizer([q for q, _ in pairs], [p for _, p in pairs], truncation="only_second", max_length=40)
    assert owners == [0, 1]
    assert [i["input_ids"] for i in inputs] == expected["input_ids"]
    assert [i["token_type_ids"] for i in inputs] == expected["token_type_ids"]


def test_any_length_fits_and_the_query_is_cut_first_on_token_ids(tokenizer):
    limits = PairLimits(max_length=64, max_query_length=16)
    inputs, owners = encode_pairs(tokenizer, [(LONG_QUERY, LONG_DOC), (LONG_QUERY, ""), ("", LONG_DOC)], limits)
    assert owners == [0, 1, 2] and all(len(i["input_ids"]) <= 64 for i in inputs)
    query_ids = tokenizer(LONG_QUERY, add_special_tokens=False)["input_ids"]
    doc_ids = tokenizer(LONG_DOC, add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # the query's first 16 token ids exactly (no decode/re-encode), then the passage's first ids up to 64
    assert inputs[0]["input_ids"] == [cls, *query_ids[:16], sep, *doc_ids[:64 - 19], sep]
    assert inputs[0]["token_type_ids"] == [0] * 18 + [1] * 46
    assert inputs[1]["input_ids"] == [cls, *query_ids[:16], sep, sep]


def test_the_query_never_takes_more_than_half_the_input(tokenizer):
    inputs, _ = encode_pairs(tokenizer, [(LONG_QUERY, LONG_DOC)], PairLimits(max_length=20, max_query_length=500))
    assert inputs[0]["token_type_ids"].count(0) == 1 + 8 + 1 and len(inputs[0]["input_ids"]) == 20


def test_direction_left_keeps_the_end_of_the_passage(tokenizer):
    doc_ids = tokenizer(LONG_DOC, add_special_tokens=False)["input_ids"]
    inputs, _ = encode_pairs(tokenizer, [("cat", LONG_DOC)], PairLimits(max_length=32, direction="left"))
    assert inputs[0]["input_ids"][3:-1] == doc_ids[-(32 - 4):]


def test_windows_cover_the_passage_with_the_stride_and_map_back(tokenizer):
    passage = words(100)
    doc_ids = tokenizer(passage, add_special_tokens=False)["input_ids"]
    limits = PairLimits(max_length=24, max_passage_tokens=10_000, stride=4)
    inputs, owners = encode_pairs(tokenizer, [("cat", passage), ("dog", "fish")], limits)
    windows = [i["input_ids"][3:-1] for i, o in zip(inputs, owners) if o == 0]
    assert owners[-1] == 1 and owners.count(0) == len(windows) > 1
    assert all(len(w) <= 24 - 4 for w in windows)
    assert windows[0] == doc_ids[:20] and windows[1][:4] == windows[0][-4:]  # consecutive windows share 4 tokens
    covered = windows[0] + [t for w in windows[1:] for t in w[4:]]
    assert covered == doc_ids
    capped, _ = encode_pairs(tokenizer, [("cat", passage)], PairLimits(max_length=24, max_passage_tokens=30, stride=4))
    assert len(capped) == 2  # the passage is first cut to 30 tokens: windows 0-20 and 16-30
    first_two, _ = encode_pairs(tokenizer, [("cat", passage)], PairLimits(max_length=24, max_windows=2, stride=4))
    assert [i["input_ids"] for i in first_two] == [i["input_ids"] for i in inputs[:2]]


def test_skip_first_window_leaves_out_the_cut_passage_and_nothing_else(tokenizer):
    passage = words(100)
    pairs = [("cat", passage), ("dog", "fish")]
    limits = PairLimits(max_length=24, max_passage_tokens=10_000, stride=4)
    every, owners = encode_pairs(tokenizer, pairs, limits)
    later, later_owners = encode_pairs(tokenizer, pairs, PairLimits(max_length=24, max_passage_tokens=10_000,
                                                                    stride=4, skip_first_window=True))
    cut, _ = encode_pairs(tokenizer, pairs[:1], PairLimits(max_length=24))
    assert every[0] == cut[0]  # the first window is the passage cut
    assert later == every[1:owners.count(0)] and later_owners == [0] * (owners.count(0) - 1)  # "fish": no input
    with pytest.raises(ValueError, match="skip_first_window needs windows"):
        PairLimits(skip_first_window=True)


def test_pad_inputs_makes_a_batch(tokenizer):
    inputs, _ = encode_pairs(tokenizer, [("cat", "dog"), ("cat cat cat", "dog dog dog dog")], PairLimits(max_length=32))
    batch = pad_inputs(tokenizer, inputs)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape == (2, 10)
    assert batch["attention_mask"][0].tolist() == [1] * 5 + [0] * 5


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="direction must be 'right' or 'left'"):
        PairLimits(direction="middle")
    with pytest.raises(ValueError, match="need max_length >= 4"):
        PairLimits(max_length=2)
