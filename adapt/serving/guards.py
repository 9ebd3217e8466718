"""What stands between the network and the model: body limits and read deadlines, API keys, request ids, and a
header-read deadline for uvicorn's HTTP protocol.

The ASGI guards wrap the FastAPI app; `HeaderTimeoutProtocol` is given to uvicorn as its `http` protocol class
(a documented `uvicorn.Config` option), because headers are read before any ASGI code runs.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ApiKeyGuard", "BodyGuard", "HeaderTimeoutProtocol", "error_response", "header_timeout_protocol", "request_id"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_READY = re.compile(r"[^/]+(/versions/[^/]+)?/ready")  # a model's readiness probe, after its route's prefix


def error_response(status: int, detail: str, rid: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body of every refusal before a protocol's route answers: `{"detail": ..., "error": ...,
    "request_id": ...}` (`detail` as FastAPI's own errors, `error` as the Open Inference Protocol's, Hugging Face's
    and Triton's clients read it); never a path or a traceback."""
    body: dict[str, Any] = {"detail": detail, "error": detail}
    if rid:
        body["request_id"] = rid
    return JSONResponse(body, status_code=status, headers=headers)


def request_id(given: str | None) -> str:
    """The client's `X-Request-Id` when it is short (<= 128) and plain (letters, digits, `._:/+=-`), else a new one."""
    return given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class BodyGuard:
    """Refuse bodies over `limit` bytes (413, with or without Content-Length) or not received within `timeout` s (408)."""

    def __init__(self, app: Any, limit: int, timeout: float | None = None) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    @property
    def message(self) -> str:
        return f"Request body exceeds {self.limit} bytes (max_body_bytes); send fewer or shorter texts."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await error_response(413, self.message)(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout if self.timeout else None
        received = 0

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal received
            left = None if deadline is None else deadline - loop.time()
            try:
                message = await (receive() if left is None else asyncio.wait_for(receive(), max(left, 0.001)))
            except asyncio.TimeoutError:
                raise HTTPException(408, f"The request body did not arrive within {self.timeout:g} s.") from None
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body grew too large: FastAPI turns this into the 413 answer
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, guarded_receive, send)


class ApiKeyGuard:
    """Answer 401 unless the request carries one of `keys` (`Authorization: Bearer KEY` or `X-API-Key: KEY`).

    Keys are compared in constant time, each against every key. Paths in `open_paths` (`/health`) need none, nor
    paths under one of `open_prefixes` that end in `/ready` (a model's own readiness probe).
    """

    def __init__(self, app: Any, keys: Iterable[str], open_paths: Iterable[str], open_prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys if k]
        self.open_paths = set(open_paths)
        self.open_prefixes = tuple(open_prefixes)

    def is_open(self, path: str) -> bool:
        """`path` is open, or a model's readiness under an open prefix (`/v2/models/NAME[/versions/V]/ready`)."""
        return path in self.open_paths or any(
            path.startswith(prefix) and _READY.fullmatch(path[len(prefix):]) for prefix in self.open_prefixes)

    def allowed(self, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        given = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"").strip()
        matches = [hmac.compare_digest(given, key) for key in self.keys]  # no early exit: same time for any key
        return bool(given) and any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or self.is_open(scope.get("path") or ""):
            await self.app(scope, receive, send)
            return
        if not self.allowed(dict(scope.get("headers") or [])):
            refusal = error_response(
                401, "A valid API key is needed: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that take more than `seconds` to send a request's headers.

    uvicorn bounds idle keep-alive connections but not a client trickling headers byte by byte; this bounds both
    the first request of a connection and every later one. A module-level class, so that the config uvicorn
    sends to its worker processes pickles it by name.
    """

    _header_timer: asyncio.TimerHandle | None = None
    seconds: float | None = None  # None: $ADAPT_HEADER_TIMEOUT, which `adapt serve` sets for its worker processes

    def _limit(self) -> float:
        return self.seconds if self.seconds is not None else float(os.environ.get("ADAPT_HEADER_TIMEOUT") or 10)

    def _waiting_for_headers(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or bool(getattr(cycle, "response_complete", False))

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = asyncio.get_running_loop().call_later(self._limit(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = getattr(self, "transport", None)
        if self._waiting_for_headers() and transport is not None and not transport.is_closing():
            transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class with a header deadline of `seconds`, for a server in this process."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"seconds": seconds})
