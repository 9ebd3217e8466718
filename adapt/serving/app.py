"""The REST app: `POST /predict`, `GET /health`, `/ready`, `/metadata`, `/metrics`, OpenAPI docs at `/docs`.

One app serves a saved or exported adapt model of any registered task (the task comes from `adapt.json`) and
plain transformers folders whose head a task declares. Requests go through the same front door as the Easy
verbs (`adapt.inference.prepare`), so options are checked against the task's declared ones. Concurrent
requests are micro-batched; limits give 413, bad bodies 422, and internal errors 500 with a request id, after
which the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from ..errors import AdaptError, InvalidInputError
from ..inference import prepare
from ..tasks import task_for_folder
from .batching import MicroBatcher, QueueFullError
from .guards import ApiKeyGuard, BodyGuard, error_response, request_id

if TYPE_CHECKING:
    from ..tasks.base import TaskSpec

logger = logging.getLogger(__name__)

__all__ = ["DOCS_ASSETS", "ServerConfig", "app_from_env", "create_app"]

DOCS_ASSETS = "/docs-assets"  # where the Swagger UI and ReDoc files are served


@dataclass(frozen=True)
class ServerConfig:
    """Server settings; each field `name` can come from the environment variable `ADAPT_<NAME>` (see `from_env`).

    Limits: `max_texts` and `max_chars` per request and `max_tokens` (all texts' tokens) per request give 413;
    `max_queued_texts` bounds the work waiting for the model (503 with `Retry-After` beyond); a request waits
    at most `request_timeout` seconds (504); a client has `header_timeout` seconds to send its headers and
    `body_timeout` for its body (408). `api_key` (comma-separated keys) protects every route but `/health`,
    and `/ready` unless `public_ready` is false; `/metrics` is open only with `public_metrics`.
    """

    model_dir: str
    device: str | None = None
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_texts: int = 256
    max_chars: int = 20_000
    max_body_bytes: int = 2_000_000
    max_tokens: int = 65_536
    max_queued_texts: int = 4_096
    request_timeout: float = 60.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    api_key: str | None = None
    public_ready: bool = True
    public_metrics: bool = False
    adapter_base: str | None = None  # a LoRA adapter folder's base model here, when its recorded name is not reachable

    @property
    def api_keys(self) -> list[str]:
        return [k.strip() for k in (self.api_key or "").split(",") if k.strip()]

    @classmethod
    def from_env(cls) -> ServerConfig:
        env = os.environ
        if not env.get("ADAPT_MODEL"):
            raise InvalidInputError("Set ADAPT_MODEL to the saved or exported model folder to serve.")
        values: dict[str, Any] = {"model_dir": env["ADAPT_MODEL"]}
        for f in dataclasses.fields(cls):
            raw = env.get(f"ADAPT_{f.name.upper()}")
            if f.name != "model_dir" and raw not in (None, ""):
                values[f.name] = _parse(raw, f.default, f.name)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that `from_env` reads back into this config."""
        out = {"ADAPT_MODEL": self.model_dir}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "model_dir" and value is not None:
                out[f"ADAPT_{f.name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _parse(raw: str, default: Any, name: str) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as e:
        raise InvalidInputError(f"ADAPT_{name.upper()}={raw!r} is not a {type(default).__name__}.") from e
    return raw


class PredictRequest(BaseModel):
    """One body for every task: items are strings, or objects with the task's fields (e.g. text, text_pair), mixed."""

    texts: list[str | dict[str, str]] = Field(min_length=1, description="Strings or objects with the task's fields")
    detail_level: str = Field("low", description="low, medium or high")
    parameters: dict[str, Any] = Field(default_factory=dict, description="The task's options (GET /metadata lists them)")


class _Metrics:
    """Prometheus metrics in a registry of the app's own (nothing global)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from ..inference import truncated_inputs

        self.registry = CollectorRegistry()
        self.requests = Counter("adapt_requests", "HTTP requests by path and status", ["path", "status"], registry=self.registry)
        self.latency = Histogram("adapt_request_latency_seconds", "Request latency", ["path"], registry=self.registry)
        self.batch = Histogram(
            "adapt_model_batch_size",
            "Texts per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.queued = Gauge("adapt_queued_texts", "Texts waiting for the model", registry=self.registry)
        truncated = Gauge("adapt_truncated_inputs", "Inputs cut to the model's length so far", registry=self.registry)
        truncated.set_function(truncated_inputs)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _TokenCounter:
    """Counts a request's tokens (both texts of a pair) for `max_tokens`, before it is queued.

    It has a tokenizer of its own and a lock: a fast tokenizer is not safe to use from two threads at once, and the
    model thread uses the predictor's.
    """

    def __init__(self, predictor: Any) -> None:
        import copy

        tokenizer = getattr(predictor, "tokenizer", None)
        self.tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
        self.lock = threading.Lock()

    def count(self, inputs: list[Any]) -> int:
        if self.tokenizer is None:
            return 0
        texts = [t for item in inputs for t in (item if isinstance(item, tuple) else (item,))]
        with self.lock:
            return sum(len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"])


def create_app(config: ServerConfig, preload: bool = False) -> FastAPI:
    """Build the app for one model folder; the model loads once, when the app starts (now, with `preload`).

    `preload=True` lets a bad folder fail here, as an `AdaptError`, before any server starts.
    """
    from ..modelio import resolve_model_source

    source = resolve_model_source(config.model_dir)  # the folder verified once (checksums included) at start
    served = _ServedModel(config, task_for_folder(source), source)
    # the docs pages load Swagger UI and ReDoc from the package, not a CDN, so they work air-gapped
    app = FastAPIOffline(title="adapt model server", version=_adapt_version(), lifespan=served.lifespan, docs_url="/docs",
                         static_url=DOCS_ASSETS)
    served.attach(app, preload)
    _add_middleware(app, served)
    _add_probe_routes(app)
    _add_metadata_route(app, served)
    _add_admin_routes(app, served)
    _add_predict_route(app, served)
    served.known_paths.update(getattr(r, "path", None) for r in app.routes)
    return app


class _ServedModel:
    """The model one app serves: loads it, swaps it in on reload, and micro-batches the calls to it.

    The predictor, its token counter and the manifest it was loaded with live in `app.state` (`predictor`, `counter`,
    `manifest`), set together on every load.
    """

    def __init__(self, config: ServerConfig, spec: TaskSpec, source: Any) -> None:
        self.config, self.spec = config, spec
        self.source: Any = source  # the folder as verified at start: the first load uses it, a reload verifies again
        self.metrics = _Metrics()
        self.reload_lock = asyncio.Lock()
        self.known_paths: set[str | None] = set()  # the app's routes: the bounded values of the metrics' path label
        self.batcher = MicroBatcher(self.run, config.max_batch_size, config.max_wait_ms, on_batch=self.metrics.batch.observe,
                                    max_queued_texts=config.max_queued_texts)
        self.metrics.queued.set_function(lambda: self.batcher.queued_texts)
        self.state: Any = None

    def attach(self, app: FastAPI, preload: bool) -> None:
        """Keep the app's state; with `preload`, load the model into it now (loaded once per worker)."""
        self.state = app.state
        self.state.predictor = self.state.counter = None
        self.state.manifest = {}
        if preload:
            self.install(*self.load())

    def load(self) -> tuple[Any, dict[str, Any]]:
        """A fresh Easy module's predictor (every load verifies the folder and owns its weights) and the folder's manifest."""
        from ..modelio import pickle_allowed, read_manifest

        config = self.config
        easy = self.spec.easy(device=config.device, trust_pickle=pickle_allowed(), adapter_base=config.adapter_base)
        source, self.source = self.source or config.model_dir, None
        predictor = easy.get_model(source)
        return predictor, getattr(source, "manifest", None) or read_manifest(config.model_dir)

    def install(self, predictor: Any, manifest: dict[str, Any]) -> None:
        """Serve `predictor` (loaded with `manifest`) from the next request on."""
        self.state.counter, self.state.predictor, self.state.manifest = _TokenCounter(predictor), predictor, manifest

    def run(self, texts: list[Any], params: dict[str, Any]) -> Any:
        """One model call of the batcher, on the predictor served now."""
        return self.state.predictor.predict(texts, batch_size=self.config.max_batch_size, **params)

    async def reload(self) -> dict[str, Any]:
        """Load the folder again (checksums verified) and swap it in; requests in flight finish on the old model."""
        async with self.reload_lock:
            self.install(*await asyncio.to_thread(self.load))
        logger.warning("reloaded the %s model from %s", self.spec.name, Path(self.config.model_dir).name)
        return {"reloaded": True, "task": self.spec.name}

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Load the model unless preloaded, start the batcher, reload on SIGHUP; stop the batcher at shutdown."""
        if app.state.predictor is None:
            self.install(*self.load())
        await self.batcher.start()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):  # main thread only
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_quiet(self.reload)))
        logger.info("serving %s model from %s", self.spec.name, Path(self.config.model_dir).name)
        try:
            yield
        finally:
            await self.batcher.stop()


def _add_middleware(app: FastAPI, served: _ServedModel) -> None:
    """The guards (401/408/413) inside, and outside them `observe`: request ids, 500s, and metrics of every answer."""
    config, metrics = served.config, served.metrics
    app.add_middleware(BodyGuard, limit=config.max_body_bytes, timeout=config.body_timeout or None)
    open_paths = {"/health"} | ({"/ready"} if config.public_ready else set()) | ({"/metrics"} if config.public_metrics else set())
    app.add_middleware(ApiKeyGuard, keys=config.api_keys, open_paths=open_paths)

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        """Tag the request and its answer with a request id, turn a crash into a 500, count and time the answer."""
        rid = request_id(request.headers.get("x-request-id"))
        request.state.request_id = rid
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # unexpected: answer 500 with the request id, keep serving
            logger.exception("request %s failed", rid)
            response = error_response(500, "Internal server error.", rid)
        response.headers["x-request-id"] = rid
        path = request.url.path if request.url.path in served.known_paths else "other"  # bounded label values
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response


def _add_probe_routes(app: FastAPI) -> None:
    """`GET /health` (liveness) and `GET /ready` (readiness)."""

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the model is loaded."""
        ok = getattr(app.state, "predictor", None) is not None
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


_LIMITS = ("max_texts", "max_chars", "max_tokens", "max_body_bytes", "max_batch_size", "max_wait_ms", "max_queued_texts",
           "request_timeout")


def _add_metadata_route(app: FastAPI, served: _ServedModel) -> None:
    """`GET /metadata`, from the manifest the served model was loaded with (the folder is not read again)."""
    from ..modelio import public_model_name
    from ..utils import library_versions

    spec, config = served.spec, served.config

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """Task, labels, input fields, parameters, model folder name, library versions and limits."""
        predictor = getattr(app.state, "predictor", None)
        labels = getattr(predictor, "classes", None) or getattr(predictor, "tags", None)
        manifest = app.state.manifest
        return {
            "task": spec.name,
            "labels": list(labels) if labels else manifest.get("labels"),
            "model_dir": public_model_name(config.model_dir),
            "base_model": public_model_name(manifest.get("base_model")),
            "input_fields": [f.name for f in spec.fields],
            "parameters": {o.name: {"type": o.type_name(), "default": _json_default(o.default), "help": o.help}
                           for o in spec.predictor.options},
            "versions": library_versions(),
            "limits": {name: getattr(config, name) for name in _LIMITS},
        }


def _add_admin_routes(app: FastAPI, served: _ServedModel) -> None:
    """`GET /metrics` (Prometheus) and `POST /reload`."""

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests by status, latency, model batch sizes, queue, truncated inputs."""
        body, ctype = served.metrics.render()
        return PlainTextResponse(body, media_type=ctype)

    @app.post("/reload")
    async def reload() -> JSONResponse:
        """Load the folder again, verifying its checksums, and serve it; on failure keep serving the old model (409)."""
        try:
            return JSONResponse(await served.reload())
        except AdaptError as e:
            return error_response(409, f"Reload refused, still serving the previous model: {e}")


def _add_predict_route(app: FastAPI, served: _ServedModel) -> None:
    """`POST /predict`: size limits (413), the task's front door (422), the queue (503) and the deadline (504)."""
    spec, config, batcher = served.spec, served.config, served.batcher

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request) -> JSONResponse:
        """Predict for a list of texts; the response is the matching `Easy*` call's JSON."""
        rid = request.state.request_id
        refusal = _check_sizes(body, config)
        if refusal is not None:
            return error_response(413, refusal, rid)
        predictor = app.state.predictor
        try:
            call = prepare(predictor, body.texts, spec.fields, body.detail_level, body.parameters, f"{spec.name} prediction")
            tokens = await asyncio.to_thread(app.state.counter.count, call.inputs)
            if tokens > config.max_tokens:
                return error_response(413, f"The texts hold {tokens} tokens, over max_tokens={config.max_tokens}; "
                                           "split the request.", rid)
            compute = call.compute if getattr(predictor, "computes_scores", False) else {}
            result = await batcher.submit(call.inputs, {**call.options, **compute}, timeout=config.request_timeout or None)
        except QueueFullError as e:
            return error_response(503, str(e), rid, headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            return error_response(504, f"The request took over request_timeout={config.request_timeout:g} s and was "
                                       "dropped; send fewer or shorter texts.", rid)
        except AdaptError as e:
            return error_response(422, str(e), rid)
        return JSONResponse(result.to_dict(call.level))


def _check_sizes(body: PredictRequest, config: ServerConfig) -> str | None:
    if len(body.texts) > config.max_texts:
        return f"{len(body.texts)} texts exceed max_texts={config.max_texts}; split the request."
    for i, item in enumerate(body.texts):
        size = len(item) if isinstance(item, str) else sum(len(v) for v in item.values())
        if size > config.max_chars:
            return f"texts[{i}] has {size} characters, over max_chars={config.max_chars}."
    return None


async def _quiet(reload: Any) -> None:
    try:
        await reload()
    except AdaptError as e:
        logger.error("reload on SIGHUP refused, still serving the previous model: %s", e)


def _json_default(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _adapt_version() -> str:
    from .. import __version__

    return __version__


def app_from_env() -> FastAPI:
    """App factory for uvicorn (`--factory`), configured from `ADAPT_*` environment variables."""
    return create_app(ServerConfig.from_env())
