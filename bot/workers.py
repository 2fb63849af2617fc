"""Worker loops that claim and run batches of due work.

Both the inbox (one message per conversation per batch — a rep's messages are handled in order)
and the outbox (one message per recipient per batch — a person receives messages in order) use
them; the claim itself, in storage, keeps those orders, across replicas too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

RunBatch = Callable[[], Awaitable[int]]


class BatchPoller:
    """Loops that each claim and run one batch after another while there is work.

    ``run_batch`` claims what it will do (so concurrent loops, here or on other replicas, never
    take the same items) and returns how many items it claimed; a loop that found nothing sleeps
    until woken or until ``poll_seconds`` have passed; once woken it waits ``gather_seconds`` more, so
    that work arriving together is claimed together. A loop that claimed a full batch goes straight
    on: a busy queue is never left idle for a poll interval. A smaller batch took everything that was
    claimable, so the loop waits for a wake instead of paying for a claim that finds nothing; whoever
    makes more work claimable (a new item accepted, the next item of a conversation becoming its head
    when the one before it is finished) wakes it, after committing that work. A wake starts one
    loop's claim, not every idle loop's (only one of them would find the work).
    """

    def __init__(
        self, name: str, run_batch: RunBatch, *, loops: int, poll_seconds: float, batch_size: int = 1,
        gather_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._batch_size = max(1, batch_size)
        self._loops = loops
        self._poll_seconds = poll_seconds
        self._gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def claiming(self) -> None:
        """A batch is about to read the queue for its claim: wakes given so far announced work
        committed before this moment, which that claim sees, so they need not cause another claim
        (which would find nothing). Whoever makes work claimable wakes only after committing it."""
        self._wake.clear()

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not all(task.done() for task in self._tasks)

    @property
    def _loop_task(self) -> asyncio.Task[None] | None:
        # What health checks written for the earlier single-loop poller read: a loop task, done
        # only when every loop has ended.
        live = [task for task in self._tasks if not task.done()]
        return live[0] if live else (self._tasks[0] if self._tasks else None)

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
            if claimed >= self._batch_size or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._take_wake(), self._poll_seconds)
                if self._gather_seconds > 0 and not self._stopping:
                    # Woken by new work: whatever else arrives within the gather window is claimed
                    # with it, in one batch. Without it, at moderate rates each message was its own
                    # batch (claim, commit, wake the next stage), and that per-batch work cost more
                    # CPU than the messages: at 100 messages/s the server was ~95% busy.
                    await asyncio.sleep(self._gather_seconds)

    async def _take_wake(self) -> None:
        # One wake releases every waiting loop; the first to run takes it and the others wait on,
        # rather than all claiming at once for work that one claim gets.
        while True:
            await self._wake.wait()
            if self._stopping:
                return
            if self._wake.is_set():
                self._wake.clear()
                return
