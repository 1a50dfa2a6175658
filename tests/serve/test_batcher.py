"""MicroBatcher: concurrent requests share scoring calls, each gets its own scores, a failure fails one request."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from rerankforge.models.pairs import PairLimits
from rerankforge.serve import MicroBatcher


def test_concurrent_requests_share_forward_passes():
    calls = []

    def score_pairs(pairs, limits):
        calls.append(len(pairs))
        return [float(len(d)) for _, d in pairs]

    async def main(enabled):
        batcher = MicroBatcher(score_pairs, wait_ms=50, enabled=enabled)
        results = await asyncio.gather(*(batcher.score([("q", "a" * i), ("q", "b")]) for i in range(1, 9)))
        batcher.close()
        return results, batcher.calls

    results, forward_calls = asyncio.run(main(True))
    assert results == [[float(i), 1.0] for i in range(1, 9)]  # each request gets its own scores back
    assert forward_calls < 8 and sum(calls) == 16
    calls.clear()
    assert asyncio.run(main(False))[1] == 8


def test_micro_batcher_scores_each_limits_group_apart_and_a_failure_only_fails_its_request():
    calls = []
    truncate, windows = PairLimits(max_length=48), PairLimits(max_length=48, max_passage_tokens=100)

    def score_pairs(pairs, limits):
        calls.append((len(pairs), limits))
        if any(d == "bad" for _, d in pairs):
            raise RuntimeError("bad pair")
        return [float(len(d)) + (0.5 if limits == windows else 0.0) for _, d in pairs]

    async def main():
        batcher = MicroBatcher(score_pairs, wait_ms=100)
        requests = [([("q", "aa"), ("q", "b")], truncate), ([("q", "ccc")], windows), ([("q", "bad")], truncate),
                    ([("q", "dddd")], truncate)]
        results = await asyncio.gather(*(batcher.score(p, lim) for p, lim in requests), return_exceptions=True)
        after = await batcher.score([("q", "eeeee")], windows)  # the worker lives on
        batcher.close()
        return results, after

    results, after = asyncio.run(main())
    assert results[0] == [2.0, 1.0] and results[1] == [3.5] and results[3] == [4.0] and after == [5.5]
    assert isinstance(results[2], RuntimeError) and "bad pair" in str(results[2])
    # one call per limits in the shared window; the failed truncate call (3 requests) retried one request at a time
    assert calls == [(4, truncate), (2, truncate), (1, truncate), (1, truncate), (1, windows), (1, windows)]


def test_observe_sees_each_calls_size_and_pending_counts_the_waiting_requests():
    sizes, seen_pending = [], []
    holder = {}

    def score_pairs(pairs, limits):
        seen_pending.append(holder["batcher"].pending)
        return [0.0] * len(pairs)

    async def main():
        batcher = holder["batcher"] = MicroBatcher(score_pairs, wait_ms=50, observe=sizes.append)
        await asyncio.gather(*(batcher.score([("q", "d")] * n) for n in (1, 2, 3)))
        batcher.close()
        return batcher.pending

    assert asyncio.run(main()) == 0
    assert sizes == [6] and seen_pending == [3]


def test_batchers_sharing_an_executor_leave_it_open_when_closed():
    executor = ThreadPoolExecutor(max_workers=1)

    async def main():
        one = MicroBatcher(lambda pairs, limits: [1.0] * len(pairs), executor=executor)
        two = MicroBatcher(lambda pairs, limits: [2.0] * len(pairs), executor=executor)
        got = await asyncio.gather(one.score([("q", "d")]), two.score([("q", "d")]))
        one.close()
        return got, await two.score([("q", "e")])

    (first, second), after = asyncio.run(main())
    assert first == [1.0] and second == [2.0] and after == [2.0]
    assert executor.submit(lambda: 7).result() == 7
    executor.shutdown()
