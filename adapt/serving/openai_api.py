"""OpenAI's embeddings API on adapt's server: `POST /v1/embeddings`, `GET /v1/models` and `GET /v1/models/{model}`.

OpenAI's clients (`openai.OpenAI(base_url=".../v1")`, LangChain, LlamaIndex) work unchanged against an embedding
model served by adapt. Requests go through the server's models (`ModelSet.predict`: size limits, the front door,
micro-batching), so `/v1/embeddings` gives the vectors `POST /predict` and `EasySentenceEmbeddings.embed` give.
Vectors come as floats, or as base64 of little-endian float32 bytes (`encoding_format="base64"`, what the
official client asks for unless told otherwise). Errors have OpenAI's shape, `{"error": {"message", "type",
"param", "code"}}`. Token-id inputs (lists of ints) are refused: they are ids of OpenAI's tokenizer, not this model's.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..errors import AdaptError
from .served import ServeError, read_json

if TYPE_CHECKING:
    from .served import Served

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingsRequest", "add_openai_routes", "openai_error"]

ENCODINGS = ("float", "base64")
# the error code OpenAI's clients see for each status
_CODES = {404: "model_not_found", 413: "request_too_large", 503: "overloaded", 504: "timeout"}


class ModelsLike(Protocol):
    """What these routes need of the server's models (`adapt.serving.models.ModelSet`)."""

    def names(self) -> list[str]: ...

    def get(self, name: str | None) -> Any: ...

    async def predict(
        self, name: str | None, items: list[Any], detail_level: Any = "low", parameters: dict[str, Any] | None = None
    ) -> tuple[Any, Any, Any]: ...


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request (its schema, for the docs; the route checks bodies itself, to answer OpenAI's 400)."""

    model: str = Field(description="A served model's name (GET /v1/models lists them)")
    input: str | list[str] | list[int] | list[list[int]] = Field(description="A text or a list of texts")
    encoding_format: str = Field("float", description="float, or base64 (little-endian float32 bytes)")
    dimensions: int | None = Field(None, description="Keep the first N dimensions (normalised again when the model normalises)")
    user: str | None = Field(None, description="Accepted and ignored")


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, with `status`."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or _CODES.get(status)}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _as_error(e: Exception) -> JSONResponse | None:
    """The OpenAI answer to a refusal (a `ServeError`: its status, and bad input, 422 on /predict, is OpenAI's 400)
    or to adapt's (400); None for anything else (a bug: the server's 500)."""
    if isinstance(e, ServeError):
        param = e.param or ("model" if e.status == 404 else "input" if e.status in (413, 422) else None)
        return openai_error(400 if e.status == 422 else e.status, e.message, param, headers=e.headers)
    if isinstance(e, AdaptError):
        return openai_error(400, str(e))
    return None


def _texts(value: Any) -> list[str]:
    """The request's `input` as a list of non-empty texts; token ids and other types refused."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ServeError(400, "input must be a non-empty string or a non-empty list of strings.", param="input")
    for i, item in enumerate(items):
        if isinstance(item, int) or (isinstance(item, list) and all(isinstance(t, int) for t in item)):
            raise ServeError(400, "input holds token ids; this server takes text only (token ids of OpenAI's tokenizer "
                                "mean nothing to this model). Send strings; with LangChain's OpenAIEmbeddings, set "
                                "check_embedding_ctx_length=False.", param="input")
        if not isinstance(item, str):
            raise ServeError(400, f"input[{i}] is a {type(item).__name__}; send strings.", param="input")
        if not item.strip():
            raise ServeError(400, f"input[{i}] is empty or whitespace; every input must hold text.", param="input")
    return items


def _checked(body: Any) -> tuple[str, list[str], str, int | None]:
    """(model, texts, encoding_format, dimensions) of a request body, or a `ServeError`."""
    if not isinstance(body, dict):
        raise ServeError(400, "The body must be a JSON object with 'model' and 'input'.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ServeError(400, "model must be the name of a served model (GET /v1/models lists them).", param="model")
    if "input" not in body:
        raise ServeError(400, "input is missing: send a string or a list of strings.", param="input")
    texts = _texts(body["input"])
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise ServeError(400, f"encoding_format must be one of {list(ENCODINGS)}, got {encoding!r}.", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise ServeError(400, f"dimensions must be a positive integer, got {dimensions!r}.", param="dimensions")
    return model, texts, encoding, dimensions


def _check_served(served: Served, dimensions: int | None) -> None:
    """Refuse a model that is not an embedding model, and more dimensions than it has."""
    if served.kind != "embeddings":
        raise ServeError(400, f"{served.name!r} is a {served.task} model, not an embedding model; POST /predict serves it.",
                         param="model")
    full = served.manifest.get("dimensions")
    if dimensions is not None and isinstance(full, int) and dimensions > full:
        raise ServeError(400, f"dimensions={dimensions} is more than {served.name!r} has ({full}).", param="dimensions")


def _vector(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return values
    import numpy as np

    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def _response(name: str, results: Any, encoding: str) -> dict[str, Any]:
    data = [{"object": "embedding", "embedding": _vector(r.vector, encoding), "index": i} for i, r in enumerate(results.items)]
    tokens = sum(int(r.tokens) for r in results.items)
    return {"object": "list", "data": data, "model": name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "adapt"}


def add_openai_routes(app: FastAPI, models: ModelsLike) -> None:
    """Add `POST /v1/embeddings`, `GET /v1/models` and `GET /v1/models/{model}` for the server's `models`."""
    body = {"application/json": {"schema": EmbeddingsRequest.model_json_schema()}}
    schema = {"requestBody": {"required": True, "content": body}}

    @app.post("/v1/embeddings", openapi_extra=schema, tags=["openai"])
    async def embeddings(request: Request) -> JSONResponse:
        """OpenAI's embeddings: one vector per input, with the tokens read as `usage`."""
        try:
            model, texts, encoding, dimensions = _checked(await read_json(request))
            request.state.model = model
            _check_served(models.get(model), dimensions)
            params = {"dimensions": dimensions} if dimensions is not None else None
            served, results, _ = await models.predict(model, texts, "low", params)
        except Exception as e:
            answer = _as_error(e)
            if answer is None:
                raise
            return answer
        return JSONResponse(_response(served.name, results, encoding))

    @app.get("/v1/models", tags=["openai"])
    async def list_models() -> dict[str, Any]:
        """The served models, as OpenAI lists models."""
        return {"object": "list", "data": [_model_card(n) for n in models.names()]}

    @app.get("/v1/models/{model:path}", tags=["openai"])
    async def get_model(model: str) -> JSONResponse:
        """One served model, as OpenAI describes a model (404 for a name not served)."""
        try:
            served = models.get(model)
        except Exception as e:
            answer = _as_error(e)
            if answer is None:
                raise
            return answer
        return JSONResponse(_model_card(served.name))


