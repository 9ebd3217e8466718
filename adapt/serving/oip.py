"""The Open Inference Protocol v2 (KServe, Triton) on adapt's server: health, metadata and `infer` under `/v2`.

`tritonclient.http`, KServe's `InferenceRESTClient` and plain `curl` talk to an adapt server as to any v2 server.
A request's input tensors are BYTES tensors named after the task's input fields (`text` and optional `text_pair`;
`question` and `context`), one element per item, shape `[n]` or `[n, 1]`; an empty string in an optional field
means "none" for that item. Request `parameters` are the task's options plus `detail_level` (Triton's reserved
ones, such as `priority` and `timeout`, are ignored). Requests go through the server's models (`ModelSet.predict`:
size limits, the front door, micro-batching), so the answers are the data the `Easy*` verbs return, as named
output tensors; `GET /v2/models/NAME` lists them per task:

- classification: `label` BYTES [n], `score` FP32 [n] (the label's probability) and `probabilities` FP32
  [n, labels] (softmax); a multi-label model gives `labels` (BYTES [n], a JSON list per item: the labels at or over
  its saved threshold, also the response's `threshold` parameter) and sigmoid `probabilities`; a regression
  model gives `value` FP32 [n].
- token classification: `entities` BYTES [n], a JSON list per item of `{text, label, score, start, end}` (character
  offsets).
- question answering: `answer` BYTES, `score` FP32, `start` and `end` INT64 (-1 without an answer), `no_answer` BOOL.
- generation, summarization and translation: `generated_text` BYTES [n].
- fill-mask: `filled` BYTES [n] and `predictions` BYTES [n] (a JSON list per item: each mask's top-k fills).
- embeddings: `embedding` FP32 [n, dimensions].
- every model: `details` BYTES [n], each item's `Easy*` JSON at the request's `detail_level`; it comes when the
  request names it in `outputs` or passes `detail_level`.

A request's `outputs` picks tensors by name. Triton's binary tensor extension is supported both ways: BYTES
inputs sent as binary data (after the JSON header whose length `Inference-Header-Content-Length` gives) and
outputs asked for with `binary_data` (or the request's `binary_data_output`). Gzip and deflate request bodies are
read (`Content-Encoding`). Errors are `{"error": "..."}` with the status of the refusal; adapt's refusals of bad
input (422 on `/predict`) are 400 here.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from ..errors import unknown_name
from .models import ModelSet
from .served import ServeError, Served, model_metadata

__all__ = ["EXTENSIONS", "VERSION", "OutputTensor", "add_oip_routes", "oip_error", "output_tensors"]

VERSION = "1"  # the one version of every served model
EXTENSIONS = ["binary_tensor_data"]
_RESERVED = frozenset({"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers"})  # Triton's
_DETAIL = {"type": "str", "default": "low", "help": "low, medium or high: how much the details output holds"}
_NP_TYPES = {"FP32": "<f4", "INT64": "<i8", "BOOL": "?"}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
    "datatype": {"type": "string", "enum": ["BYTES"]}, "data": {"type": "array", "items": {"type": "string"}}}}
_INFER_BODY = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR},
    "parameters": {"type": "object", "description": "The task's options and detail_level (GET /v2/models/NAME)"},
    "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}


@dataclass(frozen=True)
class OutputTensor:
    """One output of a model: its name, datatype, per-item width (None: shape [n]) and how it reads the results."""

    name: str
    datatype: str
    values: Callable[[Any], list[Any]]  # results -> one value (or one row, with a width) per item
    width: int | None = None  # -1: known only once predicted

    @property
    def shape(self) -> list[int]:
        return [-1] if self.width is None else [-1, self.width]


def oip_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The protocol's error body, `{"error": message}`, with `status`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------
# the output tensors of each kind of model
# ---------------------------------------------------------------------------------------------------
def _classifier(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    p = served.predictor
    n = len(served.labels or []) or -1
    if getattr(p, "regression", False):
        return [OutputTensor("value", "FP32", lambda r: [i.prediction for i in r.items])], {"regression": True}
    probs = OutputTensor("probabilities", "FP32", lambda r: [i.probs for i in r.items], n)
    multi = bool(getattr(p, "multi_label", False) or getattr(getattr(p, "model", None), "multi_label", False))
    if multi:
        threshold: Any = getattr(p, "threshold", None)
        threshold = getattr(getattr(p, "model", None), "multi_label_threshold", 0.5) if threshold is None else threshold
        labels = OutputTensor("labels", "BYTES", lambda r: [_json(i.prediction) for i in r.items])
        return [labels, probs], {"multi_label": True, "threshold": float(threshold)}
    return [
        OutputTensor("label", "BYTES", lambda r: [i.prediction for i in r.items]),
        OutputTensor("score", "FP32", lambda r: [max(i.probs) for i in r.items]),
        probs,
    ], {"multi_label": False}


def _tagger(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    return [OutputTensor("entities", "BYTES", lambda r: [_json([e.to_dict() for e in i.entities]) for i in r.items])], {}


def _offset(value: int | None) -> int:
    return -1 if value is None else int(value)


def _answerer(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    return [
        OutputTensor("answer", "BYTES", lambda r: [i.answer.text for i in r.items]),
        OutputTensor("score", "FP32", lambda r: [i.answer.score for i in r.items]),
        OutputTensor("start", "INT64", lambda r: [_offset(i.answer.start) for i in r.items]),
        OutputTensor("end", "INT64", lambda r: [_offset(i.answer.end) for i in r.items]),
        OutputTensor("no_answer", "BOOL", lambda r: [bool(i.no_answer) for i in r.items]),
    ], {}


def _generator(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    return [OutputTensor("generated_text", "BYTES", lambda r: [i.prompt + i.continuation for i in r.items])], {}


def _seq2seq(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    return [OutputTensor("generated_text", "BYTES", lambda r: [i.output for i in r.items])], {}


def _fill_mask(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    keys = ("token", "score", "sequence")

    def fills(r: Any) -> list[Any]:
        return [_json([[{k: c[k] for k in keys} for c in m.candidates] for m in i.masks]) for i in r.items]

    return [OutputTensor("filled", "BYTES", lambda r: [i.filled for i in r.items]),
            OutputTensor("predictions", "BYTES", fills)], {}


def _embedder(served: Served) -> tuple[list[OutputTensor], dict[str, Any]]:
    dims = getattr(served.predictor, "dimensions", None) or served.manifest.get("dimensions") or -1
    return [OutputTensor("embedding", "FP32", lambda r: [i.vector for i in r.items], int(dims))], {}


# predictor class name (or a base class's) -> its outputs; a predictor of another task gets `details` only
_BY_PREDICTOR: dict[str, Callable[[Served], tuple[list[OutputTensor], dict[str, Any]]]] = {
    "HFClassifier": _classifier, "FlairClassifier": _classifier, "HFTokenTagger": _tagger, "FlairTokenTagger": _tagger,
    "HFQuestionAnswerer": _answerer, "HFTextGenerator": _generator, "HFSeq2SeqGenerator": _seq2seq,
    "HFFillMask": _fill_mask, "EmbeddingPredictor": _embedder,
}


def _details(level: Any) -> OutputTensor:
    return OutputTensor("details", "BYTES", lambda r: [_json(r.select(i, i + 1).to_dict(level)) for i in range(len(r.items))])


def output_tensors(served: Served, level: Any = "low") -> tuple[list[OutputTensor], dict[str, Any]]:
    """The model's output tensors (`details` last, at `level`) and what its metadata adds (multi-label, threshold)."""
    for cls in type(served.predictor).__mro__:
        make = _BY_PREDICTOR.get(cls.__name__)
        if make is not None:
            tensors, extra = make(served)
            return [*tensors, _details(level)], extra
    return [_details(level)], {}


# ---------------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------------
def _served(models: ModelSet, name: str, version: str | None) -> Served:
    """The model `name` (at `version`, the only one); 503 while loading, 404 for a name or version not served."""
    if not models.loaded:
        raise ServeError(503, "The model is not loaded yet; retry shortly.")
    served = models.get(name)
    if version not in (None, VERSION):
        raise ServeError(404, f"Model {name!r} has no version {version!r}; its versions: [{VERSION!r}].")
    return served


def _model_metadata(served: Served) -> dict[str, Any]:
    tensors, extra = output_tensors(served)
    meta = model_metadata(served)
    parameters = {
        "task": meta["task"], "labels": meta["labels"], "base_model": meta["base_model"], "adapter": meta["adapter"],
        "optional_inputs": [f.name for f in served.fields if not f.required],
        "options": {**meta["parameters"], "detail_level": _DETAIL}, **extra,
    }
    return {
        "name": served.name,
        "versions": [VERSION],
        "platform": "adapt",
        "inputs": [{"name": f.name, "datatype": "BYTES", "shape": [-1]} for f in served.fields],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in tensors],
        "parameters": parameters,
    }


# ---------------------------------------------------------------------------------------------------
# reading a request
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Infer:
    """A parsed inference request."""

    id: str | None
    items: list[Any]
    options: dict[str, Any]
    level: str | None
    outputs: list[tuple[str, bool | None]] | None  # (name, binary_data) per requested output; None: the defaults
    binary: bool  # the request's binary_data_output


async def _read(request: Request, limit: int) -> tuple[dict[str, Any], bytes]:
    """(the JSON header, the binary data after it); 400 for bad JSON, the guards' status for a body too large/slow."""
    try:
        raw = await request.body()
    except HTTPException as e:
        raise ServeError(e.status_code, str(e.detail)) from e
    raw = _decompressed(raw, request.headers.get("content-encoding"), limit)
    size = request.headers.get("inference-header-content-length")
    if size is not None and not (size.isdigit() and int(size) <= len(raw)):
        raise ServeError(400, f"Inference-Header-Content-Length is {size!r}; the body holds {len(raw)} bytes.")
    end = len(raw) if size is None else int(size)
    try:
        body = json.loads(raw[:end])
    except (ValueError, RecursionError) as e:
        raise ServeError(400, f"The request's JSON could not be read ({str(e)[:200]}).") from e
    if not isinstance(body, dict):
        raise ServeError(400, "The request must be a JSON object with 'inputs'.")
    return body, raw[end:]


def _decompressed(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """A gzip or deflate body inflated (at most `limit` bytes: 413 beyond), any other as is."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "deflate"):
        raise ServeError(400, f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none.")
    inflate = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflate.decompress(raw, limit + 1)
    except zlib.error as e:
        raise ServeError(400, f"The {encoding} body could not be inflated ({e}).") from e
    if len(out) > limit:
        raise ServeError(413, f"The inflated body exceeds {limit} bytes (max_body_bytes); send fewer or shorter texts.")
    return out


def _binary_elements(blob: bytes, name: str) -> list[str]:
    """A BYTES tensor's binary data (each element a 4-byte little-endian length, then its bytes) as UTF-8 strings."""
    out, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ServeError(400, f"Input {name!r}: its binary data end inside an element's length.")
        (size,) = struct.unpack_from("<I", blob, at)
        if at + 4 + size > len(blob):
            raise ServeError(400, f"Input {name!r}: an element of {size} bytes runs past its binary data.")
        try:
            out.append(blob[at + 4:at + 4 + size].decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ServeError(400, f"Input {name!r}: element {len(out)} is not UTF-8 text.") from e
        at += 4 + size
    return out


def _elements(tensor: dict[str, Any], binary: bytes, at: int) -> tuple[list[str], int]:
    """One input tensor's strings (JSON `data`, flat or nested, or binary data from `at`) and the next offset."""
    name, params = tensor["name"], tensor.get("parameters") or {}
    if not isinstance(params, dict) or "shared_memory_region" in params:
        raise ServeError(400, f"Input {name!r}: shared memory is not supported; send the data in the request.")
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or at + size > len(binary):
            raise ServeError(400, f"Input {name!r}: binary_data_size {size!r} exceeds the binary data sent.")
        return _binary_elements(binary[at:at + size], name), at + size
    data = tensor.get("data")
    if not isinstance(data, list):
        raise ServeError(400, f"Input {name!r} has no 'data' list (nor binary data).")
    values = [x for row in data for x in (row if isinstance(row, list) else [row])]
    wrong = next((x for x in values if not isinstance(x, str)), None)
    if wrong is not None:
        raise ServeError(400, f"Input {name!r} holds a {type(wrong).__name__} ({wrong!r:.40}); BYTES data are strings.")
    return values, at


def _checked_shape(tensor: dict[str, Any], count: int) -> int:
    """The number of items of an input whose `shape` is [n] or [n, 1] and holds `count` elements."""
    name, shape = tensor["name"], tensor.get("shape")
    if not isinstance(shape, list):
        raise ServeError(400, f"Input {name!r} has shape {shape!r}; send [n] or [n, 1], one text per item.")
    ok = all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    if not ok or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise ServeError(400, f"Input {name!r} has shape {shape!r}; send [n] or [n, 1], one text per item.")
    if shape[0] != count:
        raise ServeError(400, f"Input {name!r} has shape {shape} but {count} elements.")
    return count


def _columns(body: dict[str, Any], binary: bytes, names: list[str]) -> dict[str, list[str]]:
    """The request's input tensors by name: BYTES, named after the task's fields, each once."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise ServeError(400, f"'inputs' must be a non-empty list of tensors named {names}.")
    columns: dict[str, list[str]] = {}
    at = 0
    for tensor in inputs:
        name = tensor.get("name")
        if not isinstance(name, str) or name not in names:
            raise ServeError(400, unknown_name("input", str(name), names))
        if name in columns:
            raise ServeError(400, f"Input {name!r} is sent twice.")
        if tensor.get("datatype") != "BYTES":
            raise ServeError(400, f"Input {name!r} is {tensor.get('datatype')!r}; texts are BYTES tensors.")
        values, at = _elements(tensor, binary, at)
        _checked_shape(tensor, len(values))
        columns[name] = values
    if at != len(binary):
        raise ServeError(400, f"{len(binary) - at} bytes of binary data follow the inputs that no input claims.")
    return columns


def _items(columns: dict[str, list[str]], served: Served) -> list[Any]:
    """One item per row: a string (one field), else an object of the fields (an empty optional field left out)."""
    required = [f.name for f in served.fields if f.required]
    missing = [n for n in required if n not in columns]
    if missing:
        raise ServeError(400, f"Inputs {missing} are missing; this model takes {[f.name for f in served.fields]}.")
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        raise ServeError(400, f"The inputs hold different numbers of items: {sizes}.")
    n = next(iter(sizes.values()))
    if list(columns) == required and len(required) == 1:
        return list(columns[required[0]])
    return [{name: values[i] for name, values in columns.items() if name in required or values[i] != ""} for i in range(n)]


def _parameters(body: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """(the task's options, detail_level, binary_data_output) from the request's `parameters`."""
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise ServeError(400, "'parameters' must be an object: the task's options and detail_level.")
    options = {k: v for k, v in params.items() if k not in _RESERVED and not k.startswith("triton_")}
    level = options.pop("detail_level", None)
    if level is not None and not isinstance(level, str):
        raise ServeError(400, f"detail_level must be low, medium or high, got {level!r}.")
    return options, level, bool(options.pop("binary_data_output", False))


def _requested(body: dict[str, Any]) -> list[tuple[str, bool | None]] | None:
    """The request's `outputs`: (name, binary_data) each; None when it names none."""
    outputs = body.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise ServeError(400, "'outputs' must be a list of objects with a 'name'.")
    out = []
    for o in outputs:
        params = o.get("parameters") or {}
        if not isinstance(params, dict) or {"classification", "shared_memory_region"} & set(params):
            raise ServeError(400, f"Output {o['name']!r}: the classification and shared memory extensions are not "
                                  "supported; ask for the output by name (GET /v2/models/NAME lists them).")
        binary = params.get("binary_data")
        out.append((o["name"], None if binary is None else bool(binary)))
    return out


def _parse(body: dict[str, Any], binary: bytes, served: Served) -> _Infer:
    rid = body.get("id")
    options, level, binary_output = _parameters(body)
    items = _items(_columns(body, binary, [f.name for f in served.fields]), served)
    return _Infer(rid if isinstance(rid, str) else None, items, options, level, _requested(body), binary_output)


# ---------------------------------------------------------------------------------------------------
# writing the answer
# ---------------------------------------------------------------------------------------------------
def _chosen(tensors: list[OutputTensor], req: _Infer) -> list[tuple[OutputTensor, bool]]:
    """The tensors to answer with and whether each goes as binary data; 400 for an output the model lacks."""
    if req.outputs is None:
        wanted = [t for t in tensors if t.name != "details" or req.level is not None]
        return [(t, req.binary) for t in wanted]
    table = {t.name: t for t in tensors}
    chosen = []
    for name, binary in req.outputs:
        if name not in table:
            raise ServeError(400, unknown_name("output", name, list(table)))
        chosen.append((table[name], req.binary if binary is None else binary))
    return chosen


def _binary_data(tensor: OutputTensor, flat: list[Any]) -> bytes:
    if tensor.datatype == "BYTES":
        encoded = [str(x).encode("utf-8") for x in flat]
        return b"".join(struct.pack("<I", len(b)) + b for b in encoded)
    import numpy as np

    return np.asarray(flat, dtype=_NP_TYPES[tensor.datatype]).tobytes()


def _answer(served: Served, results: Any, level: Any, req: _Infer) -> Response:
    """The response: JSON, or a JSON header followed by the binary outputs (`Inference-Header-Content-Length`)."""
    tensors, extra = output_tensors(served, level)
    outputs, blobs = [], []
    for tensor, binary in _chosen(tensors, req):
        values = tensor.values(results)
        flat = [x for row in values for x in row] if tensor.width is not None else values
        shape = [len(values)] if tensor.width is None else [len(values), len(values[0]) if values else 0]
        out: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": shape}
        if binary:
            blobs.append(_binary_data(tensor, flat))
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            out["data"] = flat
        outputs.append(out)
    body: dict[str, Any] = {"model_name": served.name, "model_version": VERSION, "outputs": outputs}
    if req.id is not None:
        body["id"] = req.id
    if "threshold" in extra:
        threshold = getattr(results, "threshold", None)
        body["parameters"] = {"threshold": float(extra["threshold"] if threshold is None else threshold)}
    if not blobs:
        return JSONResponse(body)
    header = json.dumps(body).encode()
    return Response(header + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})


# ---------------------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------------------
def add_oip_routes(app: FastAPI, models: ModelSet) -> None:
    """Add the Open Inference Protocol v2 routes (health, server and model metadata, readiness, infer)."""
    _add_server_routes(app, models)
    _add_model_routes(app, models)
    _add_infer_routes(app, models)


def _add_server_routes(app: FastAPI, models: ModelSet) -> None:
    from .. import __version__

    @app.get("/v2", tags=["v2"])
    async def server_metadata() -> dict[str, Any]:
        """Server metadata: name, version and the protocol extensions supported."""
        return {"name": "adapt", "version": __version__, "extensions": list(EXTENSIONS)}

    @app.get("/v2/health/live", tags=["v2"])
    async def server_live() -> dict[str, bool]:
        """Liveness: the process answers."""
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"])
    async def server_ready() -> JSONResponse:
        """Readiness: the models are loaded (503 until then)."""
        return JSONResponse({"ready": models.loaded}, status_code=200 if models.loaded else 503)


def _metadata_answer(models: ModelSet, name: str, version: str | None) -> JSONResponse:
    try:
        return JSONResponse(_model_metadata(_served(models, name, version)))
    except ServeError as e:
        return oip_error(e.status, e.message, e.headers)


def _ready_answer(models: ModelSet, name: str, version: str | None) -> JSONResponse:
    try:
        served = _served(models, name, version)
    except ServeError as e:  # an open probe: it does not list the served names
        message = f"No model {name!r} is ready here." if e.status == 404 else e.message
        return oip_error(e.status, message, e.headers)
    return JSONResponse({"name": served.name, "ready": True})


def _add_model_routes(app: FastAPI, models: ModelSet) -> None:
    @app.get("/v2/models/{name}", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"])
    async def model_metadata(name: str, version: str | None = None) -> JSONResponse:
        """A model's inputs, outputs and options (404 for a name not served; version 1 is the only one)."""
        return _metadata_answer(models, name, version)

    @app.get("/v2/models/{name}/ready", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"])
    async def model_ready(name: str, version: str | None = None) -> JSONResponse:
        """A model's readiness: 200 when it is served and loaded, else 404 (503 while loading)."""
        return _ready_answer(models, name, version)


async def _infer(models: ModelSet, request: Request, name: str, version: str | None) -> Response:
    """Run the model on the request's input tensors; the named output tensors back, or `{"error"}`."""
    request.state.model = name
    try:
        served = _served(models, name, version)
        body, binary = await _read(request, models.config.max_body_bytes)
        req = _parse(body, binary, served)
        _chosen(output_tensors(served)[0], req)  # an unknown output is refused before the model runs
        served, results, level = await models.predict(name, req.items, req.level or "low", req.options)
        return _answer(served, results, level, req)
    except ServeError as e:
        return oip_error(400 if e.status == 422 else e.status, e.message, e.headers)


def _add_infer_routes(app: FastAPI, models: ModelSet) -> None:
    docs = {"requestBody": {"required": True, "content": {"application/json": {"schema": _INFER_BODY}}}}

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=docs)
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], openapi_extra=docs)
    async def model_infer(name: str, request: Request, version: str | None = None) -> Response:
        """Inference: input tensors in, the named output tensors out (GET /v2/models/NAME lists both)."""
        return await _infer(models, request, name, version)
