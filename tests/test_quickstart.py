"""`rerankforge quickstart` in a reduced mode on the real SciFact (few queries, few steps): every output exists,
the printed table and the report agree with the run files, and a second run reuses every stage."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA, read_trec
from rerankforge.cli import main
from rerankforge.eval.metrics import evaluate_run

pytestmark = pytest.mark.slow

REDUCED = ["mine.max_queries=40", "train.max_steps=4", "train.batch_size=2", "train.model.max_length=96",
           "train.save_every=null", "eval.data.max_queries=12", "eval.rerankers.finetuned.depth=5",
           "eval.rerankers.finetuned.max_length=96", "eval.retrieve.top_k=20"]


def test_reduced_quickstart_writes_everything_and_reuses_finished_stages(tmp_path, monkeypatch, capsys):
    if not (SHARED_DATA / "scifact").exists():
        pytest.skip("real data not found")
    monkeypatch.setenv("RERANKFORGE_DATA_DIR", str(SHARED_DATA))
    out = tmp_path / "qs"
    assert main(["quickstart", f"output_dir={out}", *REDUCED]) == 0
    printed = capsys.readouterr().out
    for path in ("mine/manifest.json", "mine/dataset", "train/final/model.safetensors", "train/final/README.md",
                 "train/metrics.jsonl", "eval/report.md", "eval/report.json", "eval/per_query.jsonl",
                 "eval/runs/first_stage.trec", "eval/runs/finetuned.trec", "eval/plots/ndcg_at_k.png", "stages.json"):
        assert (out / path).exists(), path
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["data"]["queries"] == 12
    qrels = {}
    for line in (SHARED_DATA / "scifact" / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    qrels = {q: qrels[q] for q in sorted(qrels)[:12]}
    finetuned = report["rerankers"]["finetuned"]
    runs = {f"first_stage-{m}": report["first_stages"][m]["metrics"] for m in ("bm25", "dense", "hybrid")}
    runs.update({"finetuned": finetuned["metrics"], "finetuned-alone": finetuned["alone"]["metrics"]})
    for run_name, metrics in runs.items():  # every printed row is its run file's metrics
        got = evaluate_run(qrels, read_trec(out / "eval" / "runs" / f"{run_name}.trec"), ["ndcg@10", "mrr@10"])
        assert metrics["ndcg@10"] == pytest.approx(got["ndcg@10"], abs=1e-6), run_name
        assert f"{metrics['ndcg@10']:.4f}" in printed and f"{metrics['mrr@10']:.4f}" in printed
    # mining held out a dev split and picked the first stage on it; eval reranked that one, fused by the fitted weight
    manifest = json.loads((out / "mine" / "manifest.json").read_text())
    picked = manifest["config"]["mining"]["candidates"]
    assert len(manifest["dev_query_ids"]) == 10 and report["first_stage"]["method"] == picked
    fusion = json.loads((out / "train" / "final" / "fusion.json").read_text())
    assert finetuned["fusion"] == {"method": fusion["method"], "alpha": fusion["alpha"]}
    best = report["best_first_stage"]
    assert "(best)" in printed and f"Final ranking vs the best first stage ({best})" in printed
    assert f"checkpoint: {out / 'train' / 'final'}" in printed

    assert main(["quickstart", f"output_dir={out}", *REDUCED]) == 0  # again: nothing is recomputed
    again = capsys.readouterr().out
    assert again.count("unchanged since its last run") == 3
    import shutil

    shutil.copytree(out, tmp_path / "moved")  # a finished folder moved elsewhere is still reused
    assert main(["quickstart", f"output_dir={tmp_path / 'moved'}", *REDUCED]) == 0
    assert capsys.readouterr().out.count("unchanged since its last run") == 3
    assert main(["quickstart", f"output_dir={out}", *REDUCED[:-1], "eval.retrieve.top_k=10"]) == 0
    assert capsys.readouterr().out.count("unchanged since its last run") == 2  # only eval reran
