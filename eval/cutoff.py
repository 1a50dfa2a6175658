"""How many of the reranked passages go to the generator (``generate.cutoff``): the top ``generate.top_n``, the
leading passages the reranker calls relevant with at least ``min_probability``, or as many as fit a token budget.

``select_passages`` is the selection, a pure function of the passages' probabilities and token counts; ``cut``
applies the configured cut-off and the sweep's (``cutoff_points``) to one ranked list of passages.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from rerankforge.eval.config import CutoffConfig, GenerateConfig
from rerankforge.eval.generate import passage_blocks

CONFIGURED = "generate.cutoff"  # the label of the configured cut-off among the sweep's points


@dataclass
class Sent:
    """What one cut-off sends to the generator from one ranked list."""

    kind: str  # the cut-off's kind (top_n where a min_probability cut-off met a row without a reranker)
    passages: int  # how many of the leading passages
    passage_tokens: Optional[int] = None  # tokens of their numbered prompt blocks, when counted


def _leading(flags: Iterable[bool]) -> int:
    """How many of ``flags`` are true before the first false one."""
    return sum(1 for _ in itertools.takewhile(bool, flags))


def select_passages(candidates: int, cutoff: CutoffConfig, top_n: int,
                    probabilities: Optional[Sequence[float]] = None,
                    token_counts: Optional[Sequence[int]] = None) -> int:
    """How many of the first ``candidates`` passages (in the pipeline's final order) to send; never more than
    ``candidates``.

    - ``top_n``: the first ``top_n``.
    - ``min_probability``: the leading passages whose ``probabilities[i] >= cutoff.min_probability`` (stopping at
      the first below it), at least ``cutoff.min_passages`` and at most ``top_n``.
    - ``token_budget``: the leading passages whose ``token_counts`` add up to at most ``cutoff.token_budget``
      (stopping at the first that does not fit), at least ``cutoff.min_passages``; ``top_n`` does not apply.

    ``probabilities``: one per candidate. ``token_counts``: of the leading candidates, at least up to the first
    that overflows the budget (or all of them).

    Raises:
        ValueError: the kind's inputs are missing, or the kind is unknown.
    """
    if cutoff.kind == "top_n":
        return min(top_n, candidates)
    if cutoff.kind == "min_probability":
        if probabilities is None:
            raise ValueError("cut-off min_probability needs the passages' probabilities (a reranker); got none.")
        limit = min(top_n, candidates)
        fit = _leading(p >= cutoff.min_probability for p in probabilities[:limit])
    elif cutoff.kind == "token_budget":
        if token_counts is None:
            raise ValueError("cut-off token_budget needs the passages' token counts; got none.")
        limit = candidates
        fit = _leading(total <= cutoff.token_budget for total in itertools.accumulate(token_counts[:limit]))
    else:
        raise ValueError(f"unknown cut-off kind {cutoff.kind!r}; expected top_n, min_probability or token_budget.")
    return min(max(fit, cutoff.min_passages), limit)


def effective(cutoff: CutoffConfig, has_probabilities: bool) -> CutoffConfig:
    """``cutoff``, or the top_n cut-off where it needs probabilities and the row has none (no reranker)."""
    if cutoff.kind == "min_probability" and not has_probabilities:
        return dataclasses.replace(cutoff, kind="top_n")
    return cutoff


def cutoff_points(g: GenerateConfig, has_probabilities: bool) -> dict[str, CutoffConfig]:
    """The configured cut-off (label ``CONFIGURED``), then each sweep point a row can take, labelled
    ``kind=value``; a row without probabilities skips the probability points."""
    c = g.cutoff
    points = {CONFIGURED: effective(c, has_probabilities)}
    if has_probabilities:
        for p in c.sweep.min_probability:
            points[f"min_probability={p:g}"] = dataclasses.replace(c, kind="min_probability", min_probability=p)
    for budget in c.sweep.token_budget:
        points[f"token_budget={budget}"] = dataclasses.replace(c, kind="token_budget", token_budget=budget)
    return points


def leading_token_counts(count: Callable[[str], int], blocks: Sequence[str], budget: int, at_least: int) -> list[int]:
    """Token counts of the leading ``blocks``: every block until the running total exceeds ``budget`` (so any
    budget up to it can be decided) and at least the first ``at_least`` (or all blocks)."""
    counts, total = [], 0
    for block in blocks:
        if total > budget and len(counts) >= at_least:
            break
        counts.append(count(block))
        total += counts[-1]
    return counts


def cut(points: dict[str, CutoffConfig], g: GenerateConfig, texts: Sequence[str],
        probabilities: Optional[Sequence[float]], count: Optional[Callable[[str], int]] = None) -> dict[str, Sent]:
    """Apply every cut-off of ``points`` to one ranked list of passage ``texts`` (final order, best first).

    With ``count`` (a token counter) each point's passage tokens are counted too; ``token_budget`` points need it.
    Only the leading passages any point could send are counted.
    """
    budgets = [c.token_budget for c in points.values() if c.kind == "token_budget"]
    if budgets and count is None:
        raise ValueError("cut-off token_budget needs a token counter; got none.")
    sent = {label: select_passages(len(texts), c, g.top_n, probabilities)
            for label, c in points.items() if c.kind != "token_budget"}
    if count is None:
        return {label: Sent(points[label].kind, n) for label, n in sent.items()}
    at_least = max([*sent.values(), *(c.min_passages for c in points.values() if c.kind == "token_budget")])
    counts = leading_token_counts(count, passage_blocks(g, texts), max(budgets, default=-1), at_least)
    for label, c in points.items():
        if c.kind == "token_budget":
            sent[label] = select_passages(len(texts), c, g.top_n, token_counts=counts)
    return {label: Sent(c.kind, sent[label], sum(counts[: sent[label]])) for label, c in points.items()}
