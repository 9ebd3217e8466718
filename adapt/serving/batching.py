"""Micro-batching: gather concurrent requests into one model call, run off the event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
import contextlib

from ..errors import InvalidInputError

__all__ = ["MicroBatcher"]


@dataclass
class _Job:
    texts: list[Any]
    params: dict[str, Any]
    key: str
    future: asyncio.Future[Any]


class MicroBatcher:
    """Collect requests for up to `max_wait_ms` or `max_batch_size` texts, then run `run(texts, params)` once.

    Requests with different `params` are never mixed. The model runs in one worker thread, so compute never
    blocks the event loop and calls never overlap. `run` must return a result object with an `items` list
    (one per text); each request gets back its own slice.
    """

    def __init__(
        self,
        run: Callable[[list[Any], dict[str, Any]], Any],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_wait_ms < 0:
            raise InvalidInputError("max_batch_size must be >= 1 and max_wait_ms >= 0.")
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adapt-model")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("The server is shutting down."))
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown)

    async def submit(self, texts: list[Any], params: dict[str, Any]) -> Any:
        """Queue `texts` and wait for their slice of a batched result."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited.")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(texts, params, json.dumps(params, sort_keys=True, default=str), fut))
        return await fut

    async def _gather(self, first: _Job) -> list[_Job]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        jobs, n, deadline = [first], len(first.texts), loop.time() + self.max_wait
        while n < self.max_batch_size:
            timeout = deadline - loop.time()
            if timeout <= 0 and self._queue.empty():
                break
            try:
                job = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            n += len(job.texts)
        return jobs

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            jobs = await self._gather(await self._queue.get())
            groups: dict[str, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                await self._run_group(group)

    async def _run_group(self, jobs: list[_Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self.run, texts, jobs[0].params)
            if self.on_batch is not None:
                self.on_batch(len(texts))
            parts, start = [], 0
            for job in jobs:
                parts.append(result.select(start, start + len(job.texts)))
                start += len(job.texts)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e if isinstance(e, Exception) else RuntimeError(repr(e)))
            return
        for job, part in zip(jobs, parts, strict=True):
            if not job.future.done():
                job.future.set_result(part)
