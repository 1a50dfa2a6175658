"""Write an evaluation: report.json, report.md, TREC run files, a per-query JSONL, and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import ir_measures

from rerankforge.eval.cutoff import CONFIGURED
from rerankforge.eval.measure import QueryRecord
from rerankforge.eval.plots import draw_all


def write_trec(path: Path, run: dict[str, dict[str, float]], name: str) -> None:
    """TREC run format ``qid Q0 docid rank score name``; a few lines, so no library is worth pulling in."""
    lines = []
    for query_id in sorted(run):
        ranked = sorted(run[query_id].items(), key=lambda item: -item[1])  # stable: ties keep run order
        lines += [f"{query_id} Q0 {doc} {rank} {score:.6f} {name}" for rank, (doc, score) in enumerate(ranked, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    """A TREC run file as ``{query_id: {doc_id: score}}``, each query's docs in file order (best first, as
    ``write_trec`` writes them); read by ir_measures."""
    run: dict[str, dict[str, float]] = {}
    for row in ir_measures.read_trec_run(str(path)):
        run.setdefault(row.query_id, {})[row.doc_id] = row.score
    return run


def per_query_rows(summary: dict, records: list[QueryRecord], answers: dict[str, list[str]]) -> list[dict]:
    baseline = summary["baseline"]
    rows = []
    for r in records:
        row = {"query_id": r.query_id, "query": r.query, "gold_answers": answers.get(r.query_id),
               "retrieve_ms": round(r.retrieve_ms, 3), "first_stage": {
                   m: v[r.query_id] for m, v in summary["per_query"]["first_stage"].items()}, "rerankers": {}}
        for name in r.reranked:
            metrics = {m: v[r.query_id] for m, v in summary["per_query"][name].items()}
            entry = {"metrics": metrics, "top_passages": r.reranked[name].passing[:5],
                     "rerank_ms": round(r.rerank_ms[name], 3)}
            if name != baseline:
                entry["delta_vs_" + baseline] = {m: metrics[m] - summary["per_query"][baseline][m][r.query_id]
                                                 for m in metrics}
            if name in r.generations:
                sent = r.sent[name][CONFIGURED].passages
                main = r.generations[name][sent]
                probabilities = r.probabilities.get(name)
                entry.update(answer=main.answer, prompt_tokens=main.prompt_tokens, citations=main.citations,
                             generate_ms=round(r.generate_ms.get(name, 0.0), 3), passages_sent=sent,
                             probabilities=None if probabilities is None else probabilities[:sent])
            row["rerankers"][name] = entry
        rows.append(row)
    return rows


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _best_first_stage(summary: dict) -> tuple[str, dict]:
    best = summary.get("best_first_stage", summary["first_stage"]["method"])
    return best, summary.get("first_stages", {}).get(best, summary["first_stage"])["metrics"]


def describe_cutoff(generate: dict) -> str:
    """``generate.cutoff`` of a report in words, e.g. "top 3 passages"."""
    c, top_n = generate.get("cutoff") or {"kind": "top_n"}, generate["top_n"]
    if c["kind"] == "min_probability":
        return f"passages with P(relevant) >= {c['min_probability']:g}, {c['min_passages']} to {top_n}"
    if c["kind"] == "token_budget":
        return f"passages within {c['token_budget']} tokens, at least {c['min_passages']}"
    return f"top {top_n} passages"


def verdict(delta: float, p_value: float) -> str:
    """Plain words for a paired comparison at p < 0.05, to go before the run compared with."""
    if p_value >= 0.05:
        return "no significant difference from"
    return "significantly above" if delta > 0 else "significantly below"


def verdict_cell(delta: float, p_value: float) -> str:
    """``verdict`` for a table cell, where nothing follows it."""
    if p_value >= 0.05:
        return "no significant difference"
    return "above (p < 0.05)" if delta > 0 else "below (p < 0.05)"


def _ci(test: dict, scale: float = 1.0, digits: int = 4) -> str:
    low, high = test.get("ci95", (test["delta"], test["delta"]))
    return f"{scale * low:+.{digits}f} to {scale * high:+.{digits}f}"


def _compared(label: str, test: dict, best: str) -> str:
    points = f"{100 * test['delta']:+.1f} points nDCG@10 (95% CI {_ci(test, 100, 1)})"
    if test["p_value"] >= 0.05:
        return f"{label}: {points} against {best}, not significant (paired p = {test['p_value']:.2g})."
    side = "above" if test["delta"] > 0 else "below"
    return f"{label}: {points}, significantly {side} {best} (paired p = {test['p_value']:.2g})."


def alone_reading(entry: dict) -> str:
    """How the "reranker alone" row read its passages: what a user gets from the checkpoint without fusion."""
    if entry.get("max_passage_tokens"):
        return "no fusion; long passages read as windows, as the Cohere route reads them; CrossEncoder(final) cuts them"
    return "no fusion; what CrossEncoder(final) and the TEI route give"


def opening_verdict(summary: dict) -> str:
    """What the report says first: the final ranking and the reranker alone against the best first stage, in
    points of nDCG@10 with intervals, and what reranking costs per query on this machine."""
    name = summary.get("main_reranker")
    best, _ = _best_first_stage(summary)
    entry = summary["rerankers"].get(name) if name else None
    if not entry or "ndcg@10" not in entry.get("vs_best_first_stage", {}):
        return ""
    queries = summary["data"]["queries"]
    lines = [_compared("Fused with the first stage" if entry.get("fusion") else f"The reranker ({name})",
                       entry["vs_best_first_stage"]["ndcg@10"], best)]
    if entry.get("alone"):
        lines.append(_compared(f"The reranker alone ({alone_reading(entry)})",
                               entry["alone"]["vs_best_first_stage"]["ndcg@10"], best))
    hw = summary.get("hardware") or {}
    where = f"{hw.get('gpu') or hw.get('cpu', 'this machine')}" + (f", {hw['cores']} cores" if not hw.get("gpu") and
                                                                    hw.get("cores") else "")
    rerank = entry["latency_ms"]["rerank"]
    lines.append(f"Reranking the top {entry['depth']} adds {rerank['p50'] / 1000:.2f} s per query (median; p95 "
                 f"{rerank['p95'] / 1000:.2f} s) on {where}. Measured on {queries} queries.")
    return "**Verdict.** " + " ".join(lines)


def _hardware_line(summary: dict) -> str:
    hw = summary.get("hardware")
    if not hw:
        return ""
    flags = ", ".join(hw.get("cpu_flags") or []) or "none of AMX, AVX512-BF16, AVX512-VNNI, AVX2"
    return (f"Measured on {hw['cpu']} ({hw['cores']} cores; {flags}), GPU: {hw['gpu'] or 'none'}, "
            f"torch {hw['torch']}.")


def _examples(summary: dict) -> list[str]:
    """The queries the main reranker helped and hurt most, with where their relevant documents moved."""
    ex = summary.get("examples")
    if not ex:
        return []
    out = ["", f"## Queries to read: where {ex['reranker']} helped and hurt most ({ex['metric']} against "
               f"{ex['against']})", ""]
    for title, items in (("Helped", ex["won"]), ("Hurt", ex["lost"])):
        if not items:
            continue
        out += [f"**{title}**", ""]
        for i, item in enumerate(items, 1):
            moves = "; ".join(f"\"{r['text']}\" rank {r['before'] or '-'} → {r['after'] or '-'}"
                              for r in item["relevant"]) or "no relevant document retrieved"
            top = item["top_after"]
            first = f" Now first: \"{top['text']}\" ({'relevant' if top['relevant'] else 'not relevant'})." \
                if top else ""
            out.append(f"{i}. `{item['query_id']}` \"{item['query']}\": {ex['metric']} {item['before']:.3f} → "
                       f"{item['after']:.3f}. Relevant: {moves}.{first}")
        out.append("")
    return out


def _headline(summary: dict) -> str:
    """One sentence per reranker: its nDCG@10 against the best first stage, with the paired test."""
    best, best_metrics = _best_first_stage(summary)
    first = best_metrics.get("ndcg@10")
    if first is None:
        return ""
    parts = [f"nDCG@10 of the best first stage ({best}): {first:.4f}."]
    for name, entry in summary["rerankers"].items():
        if not entry["model"]:
            continue
        test = entry.get("vs_best_first_stage", {}).get("ndcg@10")
        fused = f", fused with the first stage ({entry['fusion']['method']}, alpha {entry['fusion']['alpha']:.2f})" \
            if entry.get("fusion") else ""
        text = f"**{name}** (top-{entry['depth']}{fused}): {entry['metrics']['ndcg@10']:.4f}"
        if test:
            text += (f", {test['delta']:+.4f}: {verdict(test['delta'], test['p_value'])} {best} (paired t-test "
                     f"p = {test['p_value']:.3g}, {test['wins']} queries better / {test['losses']} worse)")
        if entry.get("alone"):
            text += f"; the reranker alone: {entry['alone']['metrics']['ndcg@10']:.4f}"
        answers = entry.get("answers")
        if answers:
            sent = f"{summary['generate']['top_n']} passages" if "passages" not in answers else \
                f"passages sent ({answers['passages']:.1f} per query)"
            text += (f"; answer token F1 {answers['f1']:.3f}, gold answer in the {sent} "
                     f"for {100 * answers['answer_in_context']:.1f}% of queries")
        parts.append(text + ".")
    return "\n".join(f"- {p}" for p in parts)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _retrieval_rows(summary: dict, metrics: list[str]) -> list[list[str]]:
    """Every first stage, then each reranker (alone and fused where it fuses)."""
    fs, (best, _) = summary["first_stage"], _best_first_stage(summary)
    stages = summary.get("first_stages") or {fs["method"]: fs}
    rows = []
    for method, v in stages.items():
        tags = [t for t, on in (("reranked", method == fs["method"]), ("best", method == best)) if on]
        rows.append([f"first stage: {method}" + (f" ({', '.join(tags)})" if tags else ""), "-", "-"] +
                    [_fmt(v["metrics"][m]) for m in metrics])
    for name, e in summary["rerankers"].items():
        if not e["model"]:  # the first stage's own order: its row is above
            continue
        depth = str(e["depth"])
        if e.get("alone"):
            rows.append([f"{name} alone", str(e["model"]), depth] + [_fmt(e["alone"]["metrics"][m]) for m in metrics])
        label = (f"{name} fused ({e['fusion']['method']}, alpha {e['fusion']['alpha']:.2f})" if e.get("fusion")
                 else f"{name} alone")
        rows.append([label, str(e["model"]), depth] + [_fmt(e["metrics"][m]) for m in metrics])
    return rows


def _against_best(summary: dict) -> list[str]:
    """The paired tests of every reranker (alone and fused) against the best first stage, with a verdict."""
    tested = [(n, e) for n, e in summary["rerankers"].items() if e.get("vs_best_first_stage")]
    if not tested:
        return []
    rows = []
    for name, e in tested:
        variants = ([(f"{name} alone", e["alone"]["vs_best_first_stage"])] if e.get("alone") else []) + \
            [(name + (" fused" if e.get("fusion") else " alone"), e["vs_best_first_stage"])]
        for label, tests in variants:
            for m in ("ndcg@10", "mrr@10", "recall@10"):
                t = tests.get(m)
                if t:
                    rows.append([label, m, f"{t['delta']:+.4f}", _ci(t), f"{t['p_value']:.3g}",
                                 f"{t['wins']}/{t['losses']}/{t['ties']}", verdict_cell(t["delta"], t["p_value"])])
    return ["", f"## Against the best first stage, {_best_first_stage(summary)[0]} (paired t-test over queries; "
                "95% bootstrap interval of the mean delta)", ""] + _table(
        ["reranker", "metric", "mean delta", "95% CI", "p-value", "wins/losses/ties", "verdict"], rows)


def _cutoffs(summary: dict) -> list[str]:
    """The cut-off sweep: per reranker and cut-off, what is sent and how the answers fare."""
    rows = []
    for name, e in summary["rerankers"].items():
        for p in e.get("answers_by_cutoff", []):
            tokens = "-" if p["passage_tokens"] is None else f"{p['passage_tokens']:.0f}"
            rows.append([name, f"{p['kind']} {p['value']:g}", f"{p['passages']:.2f}", tokens,
                         f"{p['prompt_tokens']:.0f}", _fmt(p["answer_in_context"]), _fmt(p["f1"])])
    if not rows:
        return []
    return ["", "## Cut-offs (means per query)", ""] + _table(
        ["reranker", "cut-off", "passages", "passage tokens", "prompt tokens", "answer in context", "token F1"], rows)


def _llm_judges(summary: dict) -> list[str]:
    """The ``kind: llm`` rows beside the best first stage and the cross-encoders: quality against latency, tokens
    and cost."""
    rr = summary["rerankers"]
    judges = [name for name, e in rr.items() if e.get("llm")]
    if not judges:
        return []
    best, metrics = _best_first_stage(summary)
    key = "ndcg@10" if "ndcg@10" in metrics else next(iter(metrics))
    rows = [[f"first stage: {best}", "-", _fmt(metrics[key]), "-", "0", "0", "-", "-"]]
    for name, e in rr.items():
        if not e["model"]:
            continue
        lat = e["latency_ms"]["rerank"]
        cells = [name + (" fused" if e.get("fusion") else ""), str(e["model"]), _fmt(e["metrics"][key]),
                 f"{lat['p50'] / 1000:.2f} / {lat['p95'] / 1000:.2f}"]
        llm = e.get("llm")
        if llm is None:
            rows.append(cells + ["-", "-", "- (local)", "-"])
            continue
        failed = sum(llm["failures"].values())
        rows.append(cells + [f"{llm['prompt_tokens_per_query']:.0f}", f"{llm['completion_tokens_per_query']:.1f}",
                             f"${llm['cost_per_1000_queries']:.2f}", f"{failed} of {llm['calls'] + llm['cached']}"])
    out = ["", f"## LLM as judge: quality against cost ({key}; rerank seconds per query p50 / p95)", ""]
    out += _table(["run", "model", key, "rerank s", "prompt tokens / query", "completion tokens / query",
                   "cost / 1,000 queries", "failed calls"], rows)
    cached = {name: rr[name]["llm"]["cached"] for name in judges if rr[name]["llm"]["cached"]}
    out += ["", "Cost is tokens times the configured prices (`rerankers.<name>.llm.price_per_million_*`); a local "
                "model costs its machine time, in the latency column."]
    if cached:
        out.append("Answered from the judge's journal, so not timed: " + ", ".join(
            f"{name} {n} calls" for name, n in cached.items()) + ". Delete the journal to time every call.")
    return out


def render_markdown(summary: dict, command: str, plots: list[str]) -> str:
    metrics = list(summary["first_stage"]["metrics"])
    fs, rr, baseline = summary["first_stage"], summary["rerankers"], summary["baseline"]
    opening = opening_verdict(summary)
    out = ["# rerankforge evaluation", "", *([opening, ""] if opening else []), f"Command: `{command}`", "",
           f"{summary['data']['queries']} queries over {summary['data']['corpus_documents']} documents; first stage "
           f"{fs['method']} top-{fs['top_k']}" + (f" ({fs['encoder']})" if fs["encoder"] else "") + "." +
           (f" Why this first stage: {fs['why']}." if fs.get("why") else ""), "",
           _headline(summary), "", "## Retrieval", ""]
    out += _table(["run", "reranker", "depth"] + metrics, _retrieval_rows(summary, metrics))
    out += _against_best(summary)
    out += _llm_judges(summary)
    out += _examples(summary)
    # against a baseline without a model, the tests repeat those against the first stage it keeps
    compared = [n for n in rr if n != baseline] if rr[baseline]["model"] else []
    if compared:
        out += ["", f"## Against {baseline} (paired t-test over queries)", ""]
        rows = []
        for name in compared:
            for m in ("ndcg@10", "mrr@10", "recall@10"):
                t = rr[name]["vs_" + baseline].get(m)
                if t:
                    label = name + (" fused" if rr[name].get("fusion") else " alone")
                    rows.append([label, m, f"{t['delta']:+.4f}", _ci(t), f"{t['p_value']:.3g}",
                                 f"{t['wins']}/{t['losses']}/{t['ties']}"])
        out += _table(["reranker", "metric", "mean delta", "95% CI", "p-value", "wins/losses/ties"], rows)
    if any(e.get("answers") for e in rr.values()):
        out += ["", f"## Answers ({summary['generate']['kind']} generator, {describe_cutoff(summary['generate'])}, "
                    f"{summary['data']['queries_with_answers']} queries with gold answers)", ""]
        rows = [[name, _fmt(e["answers"]["exact_match"]), _fmt(e["answers"]["f1"]),
                 _fmt(e["answers"]["answer_in_context"]), f"{e['answers']['prompt_tokens']:.0f}"]
                for name, e in rr.items() if e.get("answers")]
        out += _table(["reranker", "exact match", "token F1", "answer in context", "prompt tokens / query"], rows)
    out += _cutoffs(summary)
    out += ["", "## Latency per query (ms, p50 / p95)", "", _hardware_line(summary), ""]
    ret = fs["latency_ms"]["retrieve"]
    rows = [[name, f"{ret['p50']:.1f} / {ret['p95']:.1f}",
             f"{e['latency_ms']['rerank']['p50']:.1f} / {e['latency_ms']['rerank']['p95']:.1f}",
             f"{e['latency_ms']['generate']['p50']:.1f} / {e['latency_ms']['generate']['p95']:.1f}",
             f"{e['latency_ms']['total']['p50']:.1f} / {e['latency_ms']['total']['p95']:.1f}"] for name, e in rr.items()]
    out += _table(["reranker", "retrieve", "rerank", "generate", "total"], rows)
    if plots:
        out += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in plots]
    out += ["", "Files: `report.json`, `per_query.jsonl` (per-query metrics, deltas, answers), `runs/*.trec`.", ""]
    return "\n".join(out)


def write_report(out: Path, summary: dict, records: list[QueryRecord], answers: dict[str, list[str]],
                 runs: dict[str, dict[str, dict[str, float]]], command: str, plots: bool = True) -> Path:
    """Write every output under ``out``; returns the path of report.md."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        write_trec(out / "runs" / f"{name}.trec", run, name)
    with open(out / "per_query.jsonl", "w", encoding="utf-8") as f:
        for row in per_query_rows(summary, records, answers):
            f.write(json.dumps(row) + "\n")
    drawn = []
    if plots:
        drawn = draw_all(summary, out / "plots")
    public = {k: v for k, v in summary.items() if k != "per_query"}
    (out / "report.json").write_text(json.dumps(public, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(summary, command, drawn), encoding="utf-8")
    return out / "report.md"
