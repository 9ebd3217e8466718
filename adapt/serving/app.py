"""The REST app: adapt's own routes and the standard protocols, on one port, for every model it serves.

- adapt's own: `POST /predict`, `GET /health`, `/ready`, `/metadata`, `/metrics`, `POST /reload`, docs at `/docs`.
- The Open Inference Protocol v2 (KServe, Triton clients): `/v2/...` (`oip.py`).
- Hugging Face task JSON on `POST /` and `POST /models/{name}` (`huggingface_hub.InferenceClient`; `hf_api.py`).
- OpenAI's `POST /v1/embeddings` for an embedding folder (`openai_api.py`).

It serves a saved or exported adapt model of any registered task (the task comes from `adapt.json`), plain
transformers folders whose head a task declares, embedding folders, or a base model with LoRA adapters beside
it, each a model name of its own (`models.py`, `adapters.py`). Every route goes through `ModelSet.predict`, the
task's front door, so options are checked against the task's declared ones. Concurrent requests are
micro-batched; limits give 413, bad bodies 422 (400 on the standard protocols), and internal errors 500 with a
request id, after which the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
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
from .guards import ApiKeyGuard, BodyGuard, error_response, request_id
from .models import ModelSet, ServeError
from .served import model_metadata

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
    name: str | None = None  # the model's name on every protocol (default: the folder's name)
    adapters: str | None = None  # NAME=FOLDER entries and folders of adapter folders, comma-separated: model_dir is their base

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
    model: str | None = Field(None, description="The model to ask, when the server serves several (GET /metadata)")
    adapter: str | None = Field(None, description="The same as model: an adapter served on the shared base")


class _Metrics:
    """Prometheus metrics in a registry of the app's own (nothing global), by route and by model name."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from ..inference import truncated_inputs

        self.registry = CollectorRegistry()
        self.requests = Counter("adapt_requests", "HTTP requests by path, status and model", ["path", "status", "model"],
                                registry=self.registry)
        self.latency = Histogram("adapt_request_latency_seconds", "Request latency", ["path", "model"], registry=self.registry)
        self.batch = Histogram(
            "adapt_model_batch_size",
            "Texts per model call",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.queued = Gauge("adapt_queued_texts", "Texts waiting for the model", registry=self.registry)
        self.queued_by_model = Gauge("adapt_model_queued_texts", "Texts waiting, by model", ["model"], registry=self.registry)
        truncated = Gauge("adapt_truncated_inputs", "Inputs cut to the model's length so far", registry=self.registry)
        truncated.set_function(truncated_inputs)

    def render(self, models: ModelSet) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        waiting = models.queued_texts()
        self.queued_by_model.clear()  # a model a reload removed leaves the series
        for name in models.names():
            self.queued_by_model.labels(name).set(waiting.get(name, 0))
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_app(config: ServerConfig, preload: bool = False) -> FastAPI:
    """Build the app for one model folder, an embedding folder, or a base with adapters; models load once, when the
    app starts (now, with `preload`).

    `preload=True` lets a bad folder fail here, as an `AdaptError`, before any server starts.
    """
    served = _Server(config)
    # the docs pages load Swagger UI and ReDoc from the package, not a CDN, so they work air-gapped
    app = FastAPIOffline(title="adapt model server", version=_adapt_version(), lifespan=served.lifespan, docs_url="/docs",
                         static_url=DOCS_ASSETS)
    served.attach(app, preload)
    _add_middleware(app, served)
    _add_probe_routes(app, served.models)
    _add_metadata_route(app, served)
    _add_admin_routes(app, served)
    _add_predict_route(app, served.models)
    _add_protocols(app, served.models)
    return app


def _add_protocols(app: FastAPI, models: ModelSet) -> None:
    """The standard protocols beside adapt's own: Open Inference Protocol v2, Hugging Face task JSON, OpenAI."""
    from .hf_api import add_hf_routes
    from .oip import add_oip_routes
    from .openai_api import add_openai_routes

    for add in (add_oip_routes, add_hf_routes, add_openai_routes):
        add(app, models)


class _Server:
    """What one app serves: its `ModelSet` (loaded at start, swapped on reload) and its metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = _Metrics()
        self.models = ModelSet(config, on_batch=lambda name, n: self.metrics.batch.labels(name).observe(n))
        self.metrics.queued.set_function(lambda: self.models.batcher.queued_texts)
        self.state: Any = None

    def attach(self, app: FastAPI, preload: bool) -> None:
        """Keep the models in the app's state; with `preload`, load them now (loaded once per worker)."""
        self.state = app.state
        app.state.models = self.models
        if preload:
            self.models.install(self.models.load())

    @property
    def spec(self) -> TaskSpec | None:
        return self.models.spec

    async def reload(self) -> dict[str, Any]:
        """Load again (checksums verified) and swap in; requests in flight finish on the old models."""
        answer = await self.models.reload()
        logger.warning("reloaded the %s models %s from %s", self.models.task_name, self.models.names(),
                       Path(self.config.model_dir).name)
        return answer

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Load the models unless preloaded, start the batcher, reload on SIGHUP; stop the batcher at shutdown."""
        if not self.models.loaded:
            self.models.install(await asyncio.to_thread(self.models.load))
        await self.models.batcher.start()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):  # main thread only
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_quiet(self.reload)))
        logger.info("serving %s models %s from %s", self.models.task_name, self.models.names(),
                    Path(self.config.model_dir).name)
        try:
            yield
        finally:
            await self.models.batcher.stop()


OPEN_PROBES = ("/health", "/v2/health/live")  # liveness: open to every caller, like the readiness probes by default
READY_PROBES = ("/ready", "/v2/health/ready", "/v2")


def _add_middleware(app: FastAPI, served: _Server) -> None:
    """The guards (401/408/413) inside, and outside them `observe`: request ids, 500s, and metrics of every answer."""
    config, metrics = served.config, served.metrics
    app.add_middleware(BodyGuard, limit=config.max_body_bytes, timeout=config.body_timeout or None)
    open_paths = {*OPEN_PROBES, *(READY_PROBES if config.public_ready else ()), *(("/metrics",) if config.public_metrics else ())}
    app.add_middleware(ApiKeyGuard, keys=config.api_keys, open_paths=open_paths, open_prefixes=_ready_prefixes(config))

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
        route = request.scope.get("route")
        path = getattr(route, "path", None) or "other"  # the route's template: bounded label values
        model = getattr(request.state, "model", None)
        model = model if model in served.models.models else "-" if model is None else "other"
        metrics.requests.labels(path, str(response.status_code), model).inc()
        metrics.latency.labels(path, model).observe(time.perf_counter() - start)
        return response


def _ready_prefixes(config: ServerConfig) -> tuple[str, ...]:
    """A model's own readiness (`/v2/models/NAME/ready`) is as open as the server's."""
    return ("/v2/models/",) if config.public_ready else ()


def _add_probe_routes(app: FastAPI, models: ModelSet) -> None:
    """`GET /health` (liveness) and `GET /ready` (readiness)."""

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the models are loaded."""
        ok = models.loaded
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


_LIMITS = ("max_texts", "max_chars", "max_tokens", "max_body_bytes", "max_batch_size", "max_wait_ms", "max_queued_texts",
           "request_timeout")


def _add_metadata_route(app: FastAPI, served: _Server) -> None:
    """`GET /metadata`, from the manifests the served models were loaded with (no folder is read again)."""
    from ..utils import library_versions

    config, models = served.config, served.models

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """The default model's description (task, labels, input fields, parameters, ...), every model by name under
        `models`, library versions and limits."""
        described = {name: model_metadata(s) for name, s in models.models.items()}
        default = described.get(models.default or "", {"task": models.task_name})
        return {**default, "models": described, "versions": library_versions(),
                "limits": {name: getattr(config, name) for name in _LIMITS}}


def _add_admin_routes(app: FastAPI, served: _Server) -> None:
    """`GET /metrics` (Prometheus) and `POST /reload`."""

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests by route, status and model, latency, batch sizes and queue by model."""
        body, ctype = served.metrics.render(served.models)
        return PlainTextResponse(body, media_type=ctype)

    @app.post("/reload")
    async def reload() -> JSONResponse:
        """Load the folders again, verifying their checksums, and serve them (a folder of adapters is read again:
        adapters come and go); on failure keep serving the old models (409)."""
        try:
            return JSONResponse(await served.reload())
        except AdaptError as e:
            return error_response(409, f"Reload refused, still serving the previous models: {e}")


def _add_predict_route(app: FastAPI, models: ModelSet) -> None:
    """`POST /predict`: size limits (413), unknown models (404), the task's front door (422), the queue (503) and the
    deadline (504)."""

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request) -> JSONResponse:
        """Predict for a list of texts; the response is the matching `Easy*` call's JSON."""
        rid = request.state.request_id
        name = body.model or body.adapter
        request.state.model = name or models.default
        try:
            _served, result, level = await models.predict(name, body.texts, body.detail_level, body.parameters)
        except ServeError as e:
            return error_response(e.status, e.message, rid, headers=e.headers or None)
        return JSONResponse(result.to_dict(level))


async def _quiet(reload: Any) -> None:
    try:
        await reload()
    except AdaptError as e:
        logger.error("reload on SIGHUP refused, still serving the previous model: %s", e)


def _adapt_version() -> str:
    from .. import __version__

    return __version__


def app_from_env() -> FastAPI:
    """App factory for uvicorn (`--factory`), configured from `ADAPT_*` environment variables."""
    return create_app(ServerConfig.from_env())
