"""A poller that runs due work items concurrently, at most one at a time per key.

Both the inbox (key: conversation — a rep's messages are handled in order) and the outbox (key:
target — a person receives messages in order) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FetchDue = Callable[[], Awaitable[list[tuple[int, str]]]]
Work = Callable[[int], Awaitable[None]]


class KeyedPoller:
    def __init__(self, name: str, fetch_due: FetchDue, work: Work, *, concurrency: int, poll_seconds: float) -> None:
        self.name = name
        self._fetch_due = fetch_due
        self._work = work
        self._slots = asyncio.Semaphore(concurrency)
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._busy_keys: set[str] = set()
        self._busy_ids: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name=f"{self.name}-poller")

    async def stop(self) -> None:
        """Let the loop finish its current step (never cancel a query mid-flight), then wait for work."""
        self._stopping = True
        self._wake.set()
        if self._loop_task:
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), timeout=10)
            except TimeoutError:
                self._loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._loop_task
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                due = await self._fetch_due()
            except Exception:
                log.exception("%s: fetching due work failed", self.name)
                due = []
            for item_id, key in due:
                if self._stopping:
                    break
                if key in self._busy_keys or item_id in self._busy_ids:
                    continue
                await self._slots.acquire()
                self._busy_keys.add(key)
                self._busy_ids.add(item_id)
                task = asyncio.create_task(self._run(item_id, key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def _run(self, item_id: int, key: str) -> None:
        try:
            await self._work(item_id)
        except Exception:
            log.exception("%s: item %s failed", self.name, item_id)
        finally:
            self._busy_keys.discard(key)
            self._busy_ids.discard(item_id)
            self._slots.release()
            self.wake()


RunBatch = Callable[[], Awaitable[int]]


class BatchPoller:
    """Loops that each claim and run one batch after another while there is work.

    ``run_batch`` claims what it will do (so concurrent loops, here or on other replicas, never
    take the same items) and returns how many items it claimed; a loop that found nothing sleeps
    until woken or until ``poll_seconds`` have passed. A loop that found work goes straight on: a
    busy queue is never left idle for a poll interval.
    """

    def __init__(self, name: str, run_batch: RunBatch, *, loops: int, poll_seconds: float) -> None:
        self.name = name
        self._run_batch = run_batch
        self._loops = loops
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(), name=f"{self.name}-{i}") for i in range(self._loops)]

    async def stop(self) -> None:
        """Let each loop finish its current batch (never cancel a query mid-flight)."""
        self._stopping = True
        self._wake.set()
        if not self._tasks:
            return
        _done, late = await asyncio.wait(self._tasks, timeout=30)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            # Cleared before looking, so a wake that arrives while this batch runs is not lost.
            self._wake.clear()
            try:
                claimed = await self._run_batch()
            except Exception:
                log.exception("%s: a batch failed", self.name)
                claimed = 0
            if claimed or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
