"""TREC run files: what eval writes, read back in the same order."""

from rerankforge.eval.report import read_trec, write_trec


def test_a_written_run_reads_back_best_first_with_ties_in_run_order(tmp_path):
    run = {"q2": {"a": 0.5, "b": 0.9, "c": 0.5}, "q1": {"x": -1.25}}
    write_trec(tmp_path / "run.trec", run, "tiny")
    got = read_trec(tmp_path / "run.trec")
    assert got == {"q1": {"x": -1.25}, "q2": {"b": 0.9, "a": 0.5, "c": 0.5}}
    assert list(got["q2"]) == ["b", "a", "c"]
