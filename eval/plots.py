"""PNG plots of an evaluation summary (matplotlib, headless): nDCG@k per stage and reranker, the latency
breakdown per stage, answer F1 / answer-in-context against the number of passages sent to the generator, and the
cut-off trade-off: answer-in-context and answer F1 against the prompt tokens each cut-off sends."""

from __future__ import annotations

from pathlib import Path

from rerankforge.core.extras import require
from rerankforge.core.metrics import bootstrap_ci


def _pyplot():
    matplotlib = require("matplotlib", "Evaluation plots (plots=true)")
    matplotlib.use("Agg")  # no display on servers and CI
    # matplotlib: only the report's plots need it
    import matplotlib.pyplot as plt

    return plt


def ndcg_series(summary: dict) -> dict[str, dict[str, dict[str, float]]]:
    """The runs the nDCG@k plot draws, by the names the report uses: the best first stage, then each reranker
    alone and fused (``{label: {metric: {query_id: value}}}``)."""
    best = summary.get("best_first_stage", summary["first_stage"]["method"])
    per_query = summary["per_query"]
    series = {f"{best} (best first stage)": per_query.get(f"first_stage:{best}", per_query["first_stage"])}
    for name, entry in summary["rerankers"].items():
        if not entry["model"]:
            continue
        if entry.get("alone"):
            series[f"{name} alone"] = per_query[f"{name}-alone"]
        series[f"{name} fused" if entry.get("fusion") else f"{name} alone"] = per_query[name]
    return series


def plot_ndcg(summary: dict, path: Path) -> None:
    """nDCG@k of each run in ``ndcg_series``, with 95% bootstrap intervals of the mean over queries."""
    plt = _pyplot()
    cutoffs = sorted(int(m.split("@")[1]) for m in summary["first_stage"]["metrics"] if m.startswith("ndcg@"))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for shift, (label, values) in enumerate(ndcg_series(summary).items()):
        means, low, high = [], [], []
        for k in cutoffs:
            per_query = list(values[f"ndcg@{k}"].values())
            mean = sum(per_query) / len(per_query)
            ci_low, ci_high = bootstrap_ci(per_query)  # the mean's 95% interval
            means.append(mean)
            low.append(mean - ci_low)
            high.append(ci_high - mean)
        xs = [k + 0.08 * (shift - 1) for k in cutoffs]  # side by side, so the intervals do not hide each other
        ax.errorbar(xs, means, yerr=[low, high], marker="o", capsize=3, label=label)
    ax.set_xticks(cutoffs)
    ax.set_xlabel("k")
    ax.set_ylabel("nDCG@k (95% bootstrap interval)")
    ax.set_title(f"nDCG@k over {summary['data']['queries']} queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(summary: dict, path: Path) -> None:
    plt = _pyplot()
    names = list(summary["rerankers"])
    retrieve = summary["first_stage"]["latency_ms"]["retrieve"]["p50"]
    rerank = [summary["rerankers"][n]["latency_ms"]["rerank"]["p50"] for n in names]
    generate = [summary["rerankers"][n]["latency_ms"]["generate"]["p50"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(names) + 1.6))
    ax.barh(names, [retrieve] * len(names), label="retrieve")
    ax.barh(names, rerank, left=[retrieve] * len(names), label="rerank")
    ax.barh(names, generate, left=[retrieve + r for r in rerank], label="generate")
    ax.set_xlabel("median latency per query (ms)")
    ax.set_title("Where the time goes")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_answers(summary: dict, path: Path) -> bool:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn, all_sizes = False, set()
    for name, entry in summary["rerankers"].items():
        by_n = {int(n): v for n, v in entry.get("answers_by_top_n", {}).items() if v}
        if not by_n:
            continue
        sizes = sorted(by_n)
        all_sizes.update(sizes)
        line, = ax.plot(sizes, [by_n[n]["f1"] for n in sizes], marker="o", label=f"{name}: answer F1")
        ax.plot(sizes, [by_n[n]["answer_in_context"] for n in sizes], marker="x", linestyle="--",
                color=line.get_color(), label=f"{name}: answer in context")
        drawn = True
    if drawn:
        ax.set_xticks(sorted(all_sizes))
        ax.set_xlabel("passages sent to the generator (top n)")
        ax.set_ylabel("score")
        ax.set_title(f"Answers vs. passages ({summary['generate']['kind']} generator)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def cutoff_series(entry: dict) -> dict[str, list[tuple[float, float, float, str]]]:
    """A reranker's ``(prompt tokens, answer in context, F1, label)`` points by kind, sorted by tokens: its
    ``top_n`` sizes and each swept cut-off kind (empty without a cut-off sweep)."""
    series: dict[str, list] = {}
    if entry.get("answers_by_cutoff"):
        series["top_n"] = [(v["prompt_tokens"], v["answer_in_context"], v["f1"], f"{n}")
                           for n, v in entry.get("answers_by_top_n", {}).items() if v]
    for p in entry.get("answers_by_cutoff", []):
        point = (p["prompt_tokens"], p["answer_in_context"], p["f1"], f"{p['value']:g}")
        series.setdefault(p["kind"], []).append(point)
    return {kind: sorted(points) for kind, points in series.items() if points}


def plot_cutoffs(summary: dict, path: Path) -> bool:
    """Answer-in-context (left) and answer F1 (right) against the mean prompt tokens sent, one line per reranker
    and cut-off kind, each point labelled with its value; False (nothing written) without a cut-off sweep."""
    plt = _pyplot()
    styles = {"top_n": "o", "min_probability": "s", "token_budget": "^"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = False
    for name, entry in summary["rerankers"].items():
        color = None
        for kind, points in cutoff_series(entry).items():
            tokens = [p[0] for p in points]
            for ax, column in zip(axes, (1, 2)):
                line, = ax.plot(tokens, [p[column] for p in points], marker=styles.get(kind, "o"), color=color,
                                linestyle="-" if kind == "top_n" else "--", label=f"{name}: {kind}")
                color = line.get_color()
                for p in points:
                    ax.annotate(p[3], (p[0], p[column]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            drawn = True
    if drawn:
        for ax, label in zip(axes, ("answer in context", "answer token F1")):
            ax.set_xlabel("prompt tokens sent (mean per query)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Cut-offs: tokens sent vs. answers ({summary['generate']['kind']} generator)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def draw_all(summary: dict, folder: Path) -> list[str]:
    """Draw every plot that has data into ``folder``; returns the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    plot_ndcg(summary, folder / "ndcg_at_k.png")
    plot_latency(summary, folder / "latency.png")
    names = ["ndcg_at_k.png", "latency.png"]
    if plot_answers(summary, folder / "answer_f1_vs_passages.png"):
        names.append("answer_f1_vs_passages.png")
    if plot_cutoffs(summary, folder / "cutoff_tradeoff.png"):
        names.append("cutoff_tradeoff.png")
    return names
