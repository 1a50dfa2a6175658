"""Dynamic micro-batching: concurrent requests share the reranker's scoring calls."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from rerankforge.models.pairs import PairLimits

logger = logging.getLogger("rerankforge.serve")

ScorePairs = Callable[[list[tuple[str, str]], Optional[PairLimits]], list[float]]


class MicroBatcher:
    """Concurrent requests are scored in shared calls of ``score_pairs(pairs, limits)``.

    The first waiting request opens a window of ``wait_ms``; everything queued by its end (up to ``max_pairs``
    pairs) is scored on a single worker thread, so forward passes never overlap: one call per group of requests
    with equal ``limits`` (a ``PairLimits``, or None for the model's default). When a shared call raises, each
    request of its group is retried alone, so only a request that fails by itself gets the exception and the
    others get their scores. The worker outlives any error. With ``enabled=False`` each request is scored alone
    (still one at a time).

    ``executor``: the one-thread pool the calls run on; pass the same one to several batchers (one per served
    model) so their forward passes never overlap either; by default the batcher owns one. ``observe`` is called
    with the number of pairs of each call. ``calls`` counts the calls of ``score_pairs`` (retries included);
    ``pending`` the requests waiting for their scores.
    """

    def __init__(self, score_pairs: ScorePairs, wait_ms: float = 5.0, max_pairs: int = 512, enabled: bool = True,
                 executor: Optional[ThreadPoolExecutor] = None, observe: Optional[Callable[[int], None]] = None):
        self.score_pairs, self.wait, self.max_pairs, self.enabled = score_pairs, wait_ms / 1000, max_pairs, enabled
        self.owns_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankforge-model")
        self.observe = observe
        self.queue: Optional[asyncio.Queue] = None
        self.worker: Optional[asyncio.Task] = None
        self.calls = 0  # forward calls made: how many requests shared them shows in tests and the bench
        self.pending = 0

    async def score(self, pairs: list[tuple[str, str]], limits: Optional[PairLimits] = None) -> list[float]:
        """The raw scores of ``pairs`` under ``limits``, in order.

        Raises:
            Exception: whatever ``score_pairs`` raised for these pairs scored alone.
        """
        if not pairs:
            return []
        self.pending += 1
        try:
            if not self.enabled:
                return await self._call(pairs, limits)
            loop = asyncio.get_running_loop()
            if self.queue is None:
                self.queue = asyncio.Queue()
            if self.worker is None or self.worker.done():  # started lazily, on the server's loop
                self.worker = loop.create_task(self._run())
            future = loop.create_future()
            await self.queue.put((pairs, limits, future))
            return await future
        finally:
            self.pending -= 1

    async def _call(self, pairs: list[tuple[str, str]], limits: Optional[PairLimits]) -> list[float]:
        self.calls += 1
        if self.observe is not None:
            self.observe(len(pairs))
        scores = await asyncio.get_running_loop().run_in_executor(self.executor, self.score_pairs, pairs, limits)
        if len(scores) != len(pairs):
            raise RuntimeError(f"score_pairs returned {len(scores)} scores for {len(pairs)} pairs.")
        return list(scores)

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            try:
                await self._fill(batch)
                groups: dict[Optional[PairLimits], list] = {}
                for item in batch:
                    groups.setdefault(item[1], []).append(item)
                for limits, items in groups.items():
                    await self._score_group(items, limits)
            except Exception as exc:  # a bug here must not strand the waiting requests nor stop the worker
                logger.exception("micro-batcher: unexpected error")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    async def _fill(self, batch: list) -> None:
        """Add to ``batch`` what arrives within the window, up to ``max_pairs`` pairs."""
        loop = asyncio.get_running_loop()
        size, deadline = len(batch[0][0]), loop.time() + self.wait
        while size < self.max_pairs:
            try:
                item = await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                return
            batch.append(item)
            size += len(item[0])

    async def _score_group(self, items: list, limits: Optional[PairLimits]) -> None:
        items = [item for item in items if not item[2].done()]  # a cancelled request needs no scores
        if not items:
            return
        try:
            scores = await self._call([pair for pairs, _, _ in items for pair in pairs], limits)
        except Exception as exc:
            if len(items) == 1:
                if not items[0][2].done():
                    items[0][2].set_exception(exc)
                return
            logger.warning("micro-batcher: a call shared by %d requests failed (%s: %s); retrying each alone",
                           len(items), type(exc).__name__, exc)
            for item in items:
                await self._score_group([item], limits)
            return
        start = 0
        for pairs, _, future in items:
            if not future.done():
                future.set_result(scores[start:start + len(pairs)])
            start += len(pairs)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        if self.owns_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
