"""Micro-batching: gather concurrent requests into shared model calls, run off the event loop, fairly and safely.

- Requests with the same parameters share a model call of at most `max_batch_size` texts and `max_batch_chars`
  characters; a large request is cut into such chunks and takes turns with the others, so a short request
  never waits behind a whole huge one.
- A model call that fails is retried job by job, so only the request that caused it fails.
- The queue holds at most `max_queued_texts` texts (`QueueFullError` beyond, answered 503), and a request
  past its deadline is dropped before its next chunk runs (`asyncio.TimeoutError`, answered 504).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import AdaptError, InvalidInputError
from ..results import concat_results

logger = logging.getLogger(__name__)

__all__ = ["MicroBatcher", "QueueFullError"]


class QueueFullError(AdaptError, RuntimeError):
    """The server holds as much queued work as it takes; try again shortly."""


@dataclass(eq=False)
class _Job:
    texts: list[Any]
    params: dict[str, Any]
    key: str
    future: asyncio.Future[Any]
    deadline: float | None = None
    done: int = 0  # texts already run
    parts: list[Any] = field(default_factory=list)

    @property
    def left(self) -> int:
        return len(self.texts) - self.done


class MicroBatcher:
    """Collect requests for up to `max_wait_ms`, then run `run(texts, params)` on shared chunks of them.

    The model runs in one worker thread, so compute never blocks the event loop and calls never overlap. `run`
    returns a results object of the contract in `adapt.results` (`items`, `select`); each request gets back
    its own part, assembled from the chunks it was cut into.
    """

    def __init__(
        self,
        run: Callable[[list[Any], dict[str, Any]], Any],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
        max_queued_texts: int = 4096,
        max_batch_chars: int = 32_000,
        route_key: str | None = None,
    ) -> None:
        if max_batch_size < 1 or max_wait_ms < 0 or max_queued_texts < 1 or max_batch_chars < 1:
            raise InvalidInputError("max_batch_size, max_queued_texts and max_batch_chars must be >= 1, max_wait_ms >= 0.")
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait_ms / 1000
        self.max_queued_texts, self.max_batch_chars = max_queued_texts, max_batch_chars
        self.on_batch = on_batch
        # requests that differ only in this parameter share calls: `run` gets its value per text, as a list
        self.route_key = route_key
        self.queued_texts = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._active: deque[_Job] = deque()
        self._waiting: set[_Job] = set()  # every request submitted and not finished
        self._last_key: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._active.clear()
        self._waiting.clear()
        self.queued_texts = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adapt-model")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = list(self._active)
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            self._finish(job, exc=RuntimeError("The server is shutting down."))
        self._active.clear()
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown)

    def waiting(self, key: str) -> list[tuple[Any, int]]:
        """(the value of parameter `key`, texts left) of every request queued or partly run."""
        return [(job.params.get(key), job.left) for job in self._waiting]

    async def submit(self, texts: list[Any], params: dict[str, Any], timeout: float | None = None) -> Any:
        """Queue `texts` and wait for their results; `timeout` seconds at most (then `asyncio.TimeoutError`)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited.")
        if self.queued_texts + len(texts) > self.max_queued_texts:
            raise QueueFullError(
                f"The server is busy ({self.queued_texts} texts queued, at most {self.max_queued_texts}); retry shortly."
            )
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        deadline = loop.time() + timeout if timeout else None
        self.queued_texts += len(texts)
        key = json.dumps({k: v for k, v in params.items() if k != self.route_key}, sort_keys=True, default=str)
        job = _Job(list(texts), params, key, fut, deadline)
        self._waiting.add(job)
        await self._queue.put(job)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout) if timeout else await fut
        except asyncio.TimeoutError:
            fut.cancel()  # its remaining chunks are dropped
            raise

    # -- the loop ---------------------------------------------------------------------------------------
    async def _take_new(self) -> None:
        """Move queued jobs to the active list, waiting up to `max_wait` for more when few texts wait."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        if not self._active:
            self._active.append(await self._queue.get())
        deadline = loop.time() + self.max_wait
        while sum(j.left for j in self._active) < self.max_batch_size:
            timeout = deadline - loop.time()
            try:
                job = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            self._active.append(job)
        while not self._queue.empty():
            self._active.append(self._queue.get_nowait())

    def _next_chunk(self) -> list[tuple[_Job, int, int]]:
        """(job, start, stop) pieces of one model call: jobs of one parameter group in arrival order, each
        contributing texts until the call holds `max_batch_size` texts or `max_batch_chars` characters."""
        now = asyncio.get_running_loop().time()
        for job in list(self._active):
            if job.future.done() or (job.deadline is not None and now > job.deadline):
                self._finish(job, exc=asyncio.TimeoutError())
        if not self._active:
            return []
        # parameter groups take turns: the oldest job of another group than the last call's goes next
        key = next((j.key for j in self._active if j.key != self._last_key), self._active[0].key)
        self._last_key = key
        chunk: list[tuple[_Job, int, int]] = []
        n = chars = 0
        for job in self._active:
            if job.key != key:
                continue
            stop = job.done
            while stop < len(job.texts) and n < self.max_batch_size:
                size = _chars(job.texts[stop])
                if n and chars + size > self.max_batch_chars:
                    break
                stop, n, chars = stop + 1, n + 1, chars + size
            if stop > job.done:
                chunk.append((job, job.done, stop))
            if n >= self.max_batch_size or chars >= self.max_batch_chars:
                break
        return chunk

    async def _loop(self) -> None:
        while True:
            await self._take_new()
            chunk = self._next_chunk()
            if chunk:
                await self._run_chunk(chunk)

    async def _call(self, texts: list[Any], params: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self.run, texts, params)
        if self.on_batch is not None:
            self.on_batch(len(texts))
        return result

    def _params(self, chunk: list[tuple[_Job, int, int]]) -> dict[str, Any]:
        """The parameters of a chunk's call: its group's, with the route of each text when the batcher routes."""
        params = chunk[0][0].params
        if self.route_key is None:
            return params
        return {**params, self.route_key: [job.params.get(self.route_key) for job, a, b in chunk for _ in range(b - a)]}

    async def _run_chunk(self, chunk: list[tuple[_Job, int, int]]) -> None:
        texts = [t for job, a, b in chunk for t in job.texts[a:b]]
        try:
            result = await self._call(texts, self._params(chunk))
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # e.g. a tokenizer panic: only the job that caused it may fail
            if len(chunk) == 1:
                self._finish(chunk[0][0], exc=_as_exception(e))
                return
            logger.warning("a batch of %d requests failed (%s); running them one by one", len(chunk), type(e).__name__)
            for piece in chunk:
                await self._run_chunk([piece])
            return
        start = 0
        for job, a, b in chunk:
            job.parts.append(result.select(start, start + b - a))
            start += b - a
            job.done = b
            if job.left == 0:
                self._finish(job, result=concat_results(job.parts))

    def _finish(self, job: _Job, result: Any = None, exc: BaseException | None = None) -> None:
        self._waiting.discard(job)
        if job in self._active:
            self._active.remove(job)
            self.queued_texts -= len(job.texts)
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)


def _chars(item: Any) -> int:
    return sum(len(v) for v in item) if isinstance(item, tuple) else len(item) if isinstance(item, str) else 1


def _as_exception(e: BaseException) -> Exception:
    return e if isinstance(e, Exception) else RuntimeError(repr(e))
