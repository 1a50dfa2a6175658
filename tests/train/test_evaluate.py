"""The dev split's windows pass: what it reuses of selection's cut scores, and when it may not."""

from conftest import WORDS

from rerankforge.core.dev_split import DevSet
from rerankforge.models.export import rerank_dev
from rerankforge.models.reranker import Reranker
from rerankforge.train.evaluate import score_dev_windows

LONG = " ".join(WORDS[i % len(WORDS)] for i in range(120))


def dev_split() -> DevSet:
    pairs = [("q1", "long", "cat sat", LONG), ("q1", "short", "cat sat", "the cat sat"),
             ("q2", "long", "dogs run", LONG)]
    return DevSet(qrels={"q1": {"short": 1}, "q2": {"long": 1}},
                  first_stage={"q1": {"long": 2.0, "short": 1.0}, "q2": {"long": 1.0}}, pairs=pairs)


def test_the_cut_scores_stand_for_first_windows_only_when_windows_start_with_the_cut(tiny_cross_encoder):
    dev = dev_split()
    high = {"q1": {"long": 50.0, "short": 50.0}, "q2": {"long": 50.0}}  # no window scores that high
    reused = score_dev_windows(tiny_cross_encoder, dev, 256, 16, "cpu", None, high)
    assert reused == high  # the cut score is the best of every passage's windows here, so every one comes through
    windows = rerank_dev(Reranker(tiny_cross_encoder, device="cpu", max_passage_tokens=256, max_query_length=16), dev)
    assert score_dev_windows(tiny_cross_encoder, dev, 256, 16, "cpu", None) == windows
    # windows of up to 8 tokens: the first is shorter than the cut passage, so nothing is reused
    short = score_dev_windows(tiny_cross_encoder, dev, 8, 16, "cpu", None, high)
    assert all(score < 50 for docs in short.values() for score in docs.values())
