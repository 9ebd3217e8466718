"""The REST app: `POST /predict`, `GET /health`, `/ready`, `/metadata`, `/metrics`, OpenAPI docs at `/docs`.

One app serves a saved or exported adapt model of any registered task (the task comes from `adapt.json`) and
plain transformers folders whose head a task declares. Requests go through the same front door as the Easy
verbs (`adapt.inference.prepare`), so options are checked against the task's declared ones. Concurrent
requests are micro-batched; limits give 413, bad bodies 422, and internal errors 500 with a request id, after
which the server keeps serving.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from ..errors import AdaptError, InvalidInputError
from ..inference import prepare
from ..tasks import task_for_folder
from .batching import MicroBatcher

logger = logging.getLogger(__name__)

__all__ = ["ServerConfig", "app_from_env", "create_app"]


@dataclass(frozen=True)
class ServerConfig:
    """Server settings; every field can come from an `ADAPT_*` environment variable (see `from_env`)."""

    model_dir: str
    device: str | None = None
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_texts: int = 256
    max_chars: int = 20_000
    max_body_bytes: int = 2_000_000

    @classmethod
    def from_env(cls) -> ServerConfig:
        env = os.environ
        if not env.get("ADAPT_MODEL"):
            raise InvalidInputError("Set ADAPT_MODEL to the saved or exported model folder to serve.")
        return cls(
            model_dir=env["ADAPT_MODEL"],
            device=env.get("ADAPT_DEVICE") or None,
            max_batch_size=int(env.get("ADAPT_MAX_BATCH_SIZE", cls.max_batch_size)),
            max_wait_ms=float(env.get("ADAPT_MAX_WAIT_MS", cls.max_wait_ms)),
            max_texts=int(env.get("ADAPT_MAX_TEXTS", cls.max_texts)),
            max_chars=int(env.get("ADAPT_MAX_CHARS", cls.max_chars)),
            max_body_bytes=int(env.get("ADAPT_MAX_BODY_BYTES", cls.max_body_bytes)),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that `from_env` reads back into this config."""
        out = {
            "ADAPT_MODEL": self.model_dir,
            "ADAPT_MAX_BATCH_SIZE": str(self.max_batch_size),
            "ADAPT_MAX_WAIT_MS": str(self.max_wait_ms),
            "ADAPT_MAX_TEXTS": str(self.max_texts),
            "ADAPT_MAX_CHARS": str(self.max_chars),
            "ADAPT_MAX_BODY_BYTES": str(self.max_body_bytes),
        }
        if self.device:
            out["ADAPT_DEVICE"] = self.device
        return out


class PredictRequest(BaseModel):
    """One body for every task: items are strings, or objects with the task's fields (e.g. text, text_pair), mixed."""

    texts: list[str | dict[str, str]] = Field(min_length=1, description="Strings or objects with the task's fields")
    detail_level: str = Field("low", description="low, medium or high")
    parameters: dict[str, Any] = Field(default_factory=dict, description="The task's options (GET /metadata lists them)")


class _Metrics:
    """Prometheus metrics in a registry of the app's own (nothing global)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("adapt_requests", "HTTP requests by path and status", ["path", "status"], registry=self.registry)
        self.latency = Histogram("adapt_request_latency_seconds", "Request latency", ["path"], registry=self.registry)
        self.batch = Histogram(
            "adapt_model_batch_size",
            "Texts per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _error(status: int, detail: str, rid: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if rid:
        body["request_id"] = rid
    return JSONResponse(body, status_code=status)


class _BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes with 413, with or without a Content-Length header."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body grew too large: FastAPI turns this into the 413 answer
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def message(self) -> str:
        return f"Request body exceeds {self.limit} bytes (max_body_bytes); send fewer or shorter texts."

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _error(413, self.message)(scope, receive, send)


def create_app(config: ServerConfig, preload: bool = False) -> FastAPI:
    """Build the app for one model folder; the model loads once, when the app starts (now, with `preload`).

    `preload=True` lets a bad folder fail here, as an `AdaptError`, before any server starts.
    """
    spec = task_for_folder(config.model_dir)
    metrics = _Metrics()

    def load() -> Any:
        from ..modelio import pickle_allowed

        return spec.easy(device=config.device, trust_pickle=pickle_allowed()).get_model(config.model_dir)

    def run(texts: list[Any], params: dict[str, Any]) -> Any:
        return app.state.predictor.predict(texts, batch_size=config.max_batch_size, **params)

    batcher = MicroBatcher(run, config.max_batch_size, config.max_wait_ms, on_batch=metrics.batch.observe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if app.state.predictor is None:
            app.state.predictor = load()
        await batcher.start()
        logger.info("serving %s model from %s", spec.name, config.model_dir)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="adapt model server", version=_adapt_version(), lifespan=lifespan)
    app.state.predictor = load() if preload else None  # loaded once per worker
    # inner middleware first: the body limit answers 413 itself, and `observe` (outer) counts every answer
    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # unexpected: answer 500 with the request id, keep serving
            logger.exception("request %s failed", rid)
            response = _error(500, "Internal server error.", rid)
        response.headers["x-request-id"] = rid
        path = request.url.path if request.url.path in known_paths else "other"  # bounded label values
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the model is loaded."""
        ok = getattr(app.state, "predictor", None) is not None
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """Task, labels, model folder and library versions."""
        from ..modelio import read_manifest
        from ..utils import library_versions

        predictor = getattr(app.state, "predictor", None)
        labels = getattr(predictor, "classes", None) or getattr(predictor, "tags", None)
        manifest = read_manifest(config.model_dir)
        return {
            "task": spec.name,
            "labels": list(labels) if labels else manifest.get("labels"),
            "model_dir": config.model_dir,
            "base_model": manifest.get("base_model"),
            "input_fields": [f.name for f in spec.fields],
            "parameters": {o.name: {"type": o.type_name(), "default": _json_default(o.default), "help": o.help}
                           for o in spec.predictor.options},
            "versions": library_versions(),
            "limits": {
                "max_texts": config.max_texts,
                "max_chars": config.max_chars,
                "max_body_bytes": config.max_body_bytes,
                "max_batch_size": config.max_batch_size,
                "max_wait_ms": config.max_wait_ms,
            },
        }

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests by status, latency, model batch sizes."""
        body, ctype = metrics.render()
        return PlainTextResponse(body, media_type=ctype)

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request) -> JSONResponse:
        """Predict for a list of texts; the response is the matching `Easy*` call's JSON."""
        if len(body.texts) > config.max_texts:
            return _error(413, f"{len(body.texts)} texts exceed max_texts={config.max_texts}; split the request.")
        for i, item in enumerate(body.texts):
            size = len(item) if isinstance(item, str) else sum(len(v) for v in item.values())
            if size > config.max_chars:
                return _error(413, f"texts[{i}] has {size} characters, over max_chars={config.max_chars}.")
        predictor = app.state.predictor
        try:
            call = prepare(predictor, body.texts, spec.fields, body.detail_level, body.parameters)
            compute = call.compute if getattr(predictor, "computes_scores", False) else {}
            result = await batcher.submit(call.inputs, {**call.options, **compute})
        except AdaptError as e:
            return _error(422, str(e))
        return JSONResponse(result.to_dict(call.level))

    known_paths = {getattr(r, "path", None) for r in app.routes}
    return app


def _json_default(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _adapt_version() -> str:
    from .. import __version__

    return __version__


def app_from_env() -> FastAPI:
    """App factory for uvicorn (`--factory`), configured from `ADAPT_*` environment variables."""
    return create_app(ServerConfig.from_env())
