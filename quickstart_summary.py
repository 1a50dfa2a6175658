"""What ``rerankforge quickstart`` prints when it is done: the first stages against the fine-tuned reranker (alone and
fused), a one-sentence verdict against the best first stage, what cold start generated, and each stage's time.

``result`` is the dict ``rerankforge.quickstart.quickstart`` returns.
"""

from __future__ import annotations

from rerankforge.eval.report import alone_reading, verdict

FIRST_STAGE_NAMES = {"bm25": "BM25 (bm25s, stemmed)", "dense": "dense (bi-encoder + FAISS)",
                     "hybrid": "hybrid (RRF of BM25 and dense)"}


def verdict_line(result: dict) -> str:
    """Plain sentences: did the final ranking, and the reranker alone (the checkpoint without first-stage scores,
    as the server returns it), beat the best first stage, significantly?"""
    best, entry = result["best_first_stage"], result["finetuned"]
    test = entry["vs_best_first_stage"]["ndcg@10"]
    text = (f"Final ranking vs the best first stage ({best}): nDCG@10 {test['delta']:+.4f}, paired p = "
            f"{test['p_value']:.3g} ({test['wins']} queries better / {test['losses']} worse): "
            f"{verdict(test['delta'], test['p_value'])} it.")
    if test["p_value"] >= 0.05 or test["delta"] <= 0:
        text += " The fine-tuned reranker did not help on this data."
    alone = (entry.get("alone") or {}).get("vs_best_first_stage", {}).get("ndcg@10")
    if alone:
        words = verdict(alone["delta"], alone["p_value"])
        text += (f"\nThe reranker alone ({alone_reading(entry)}) vs {best}: nDCG@10 "
                 f"{alone['delta']:+.4f}, paired p = {alone['p_value']:.3g}: {words} it.")
    return text


def summary_table(result: dict) -> str:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    entry = result["finetuned"]

    def row(label: str, metrics: dict) -> str:
        return f"| {label} | " + " | ".join(f"{metrics[k]:.4f}" for k in keys) + " |"

    rows = ["| run | nDCG@10 | MRR@10 | Recall@10 |", "|---|---|---|---|"]
    for method, stage in result["first_stages"].items():
        marks = [m for m, on in (("reranked", method == result["first_stage"]),
                                 ("best", method == result["best_first_stage"])) if on]
        rows.append(row(f"first stage: {FIRST_STAGE_NAMES[method]}" + (f" ({', '.join(marks)})" if marks else ""),
                        stage["metrics"]))
    if entry.get("alone"):
        rows.append(row(f"fine-tuned reranker alone (top-{entry['depth']})", entry["alone"]["metrics"]))
    fusion = entry.get("fusion")
    rows.append(row(f"fine-tuned reranker (top-{entry['depth']})" + (
        f" fused with the first stage ({fusion['method']}, alpha {fusion['alpha']:.2f} fitted on dev)" if fusion else ""),
        entry["metrics"]))
    rows += ["", verdict_line(result)]
    if result.get("first_stage_reason"):
        rows.append(f"First stage reranked: {FIRST_STAGE_NAMES[result['first_stage']]}; why: "
                    f"{result['first_stage_reason']}.")
    rows.append("")
    held = result.get("held_out")
    if held:
        rows += [f"test split: {held['test_queries']} of {held['labelled_queries']} labelled queries, held out by the "
                 f"quickstart (test_fraction={held['fraction']}, seed {held['seed']}); trained on the other "
                 f"{held['train_queries']}", ""]
    if result.get("synth"):
        counts = result["synth"]
        dropped = ", ".join(f"{r} {n}" for r, n in counts["dropped"].items() if n) or "none"
        rows += [f"trained on {counts['queries_train']} synthetic queries ({result['labels']} labels): kept "
                 f"{counts['queries_kept']} of {counts['queries_generated']} generated for "
                 f"{counts['passages_sampled']} passages (dropped: {dropped})", ""]
    for name, stage in result["stages"].items():
        rows.append(f"{name:>5}: {stage['seconds'] / 60:5.1f} min" + (" (reused from an earlier run)" if stage["reused"] else ""))
    total = sum(s["seconds"] for s in result["stages"].values() if not s["reused"])
    rows += [f"total this run: {total / 60:.1f} min", f"checkpoint: {result['checkpoint']}",
             f"report: {result['report']} (+ report.json, plots/)"]
    return "\n".join(rows)
