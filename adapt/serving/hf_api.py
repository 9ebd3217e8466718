"""Hugging Face task JSON on adapt's server: `POST /` (the default model) and `POST /models/{name}` (one by name).

`huggingface_hub.InferenceClient(model="http://HOST:PORT")`, or `model=".../models/NAME"` for one of several served
models, works unchanged: a body `{"inputs": ..., "parameters": {...}}` is answered in the shape of the Hugging Face
task specs, with their parameter names, for the served model's task (`HF_TASKS`):

- text classification: `[[{label, score}, ...]]`, every label best first (`top_k` keeps the best k,
  `function_to_apply` softmax / sigmoid / none); a multi-label model answers sigmoid scores, never softmax, and each
  label carries the `threshold` its decisions use (the saved one, or the `threshold` parameter).
- token classification: `[{entity_group, score, word, start, end}]` (`entity` for `aggregation_strategy="none"`),
  `ignore_labels`, `stride`.
- question answering: `{answer, score, start, end}` (a list with `top_k` > 1; no answer is `""` at 0..0),
  `handle_impossible_answer`, `max_answer_len`.
- fill-mask: `[{score, token, token_str, sequence}]` (a list per mask when a text has several), `top_k`.
- text generation: `[{generated_text}]`, `max_new_tokens`, `return_full_text` (default true), `do_sample`, `top_k`,
  `top_p`, `temperature`, `seed`, `repetition_penalty`, `typical_p`.
- summarization and translation: `[{summary_text}]` / `[{translation_text}]`, `generate_parameters`.
- feature extraction (embedding folders): `[[floats]]` as TEI's `/embed`, `normalize`, `truncate`.

A list of inputs answers a list of per-input answers, as the pipelines do. adapt's own options that the specs lack
(`long_text`, `threshold`, `prefix`, `num_beams`, ...) are accepted under adapt's names. An unknown parameter is a
400 naming the closest; spec parameters adapt does not take are a 400 in the wording `InferenceClient.text_generation`
recognises (it retries without them). Requests go through the server's models (`ModelSet.predict`), so scores and
texts equal the Easy verbs'. Errors are `{"error", "error_type"}`, as Inference Endpoints and TEI answer; adapt's
refusals of bad input (422 on `/predict`) are 400 here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..enums import ChoiceEnum
from ..errors import AdaptError, unknown_name
from ..options import Option, check_options, defaults
from .served import ServeError, read_json

if TYPE_CHECKING:
    from .models import ModelSet
    from .served import Served

__all__ = ["HF_TASKS", "ClassificationFunction", "HFRequest", "HFTask", "add_hf_routes", "hf_error"]

_ERROR_TYPES = {404: "not_found", 408: "timeout", 503: "overloaded", 504: "timeout"}  # else validation (4xx), backend
_BODY_KEYS = ("inputs", "parameters", "options", "stream")  # `options`: the Inference API's use_cache/wait_for_model
_QA_CANDIDATES = 20  # HFQuestionAnswerer's default n_best_size


class ClassificationFunction(ChoiceEnum):
    """Text classification's `function_to_apply`: softmax, sigmoid or none (the logits)."""

    Softmax = "softmax"
    Sigmoid = "sigmoid"
    Identity = "none"


class HFRequest(BaseModel):
    """A Hugging Face task request (its schema, for the docs; the route checks bodies itself, to answer HF's 400)."""

    inputs: Any = Field(description="A text, {text, text_pair}, {question, context}, or a list of them (the task's)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="The task spec's parameters, or adapt's options")


Answer = Callable[[Any, dict[str, Any], dict[str, Any]], list[Any]]  # (results, own parameters, adapt options)


@dataclass(frozen=True)
class HFTask:
    """How one adapt task speaks a Hugging Face task: input shape, parameters and the answer per input.

    `own` are spec parameters answered here (validated as adapt options are), `renamed` spec names of adapt options,
    `unsupported` spec parameters adapt does not take; any other name must be one of the model's adapt options.
    """

    name: str  # the Hugging Face task
    shape: str  # what `inputs` must be, for refusals
    accepts: Callable[[Any], bool]  # one input of the right shape
    answer: Answer
    own: tuple[Option, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)
    unsupported: tuple[str, ...] = ()
    prepare: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None  # checks; adapt options out
    listed: bool = False  # a list over inputs even for one input (text classification, summarization, ...)
    nested: str | None = None  # a parameter whose entries are parameters too (`generate_parameters`)
    root_parameters: bool = False  # parameters may sit beside `inputs` (feature extraction, as TEI takes them)


# ---------------------------------------------------------------------------------------------------
# answers: adapt's results -> the spec's shape, one per input
# ---------------------------------------------------------------------------------------------------
def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(x / 2.0))  # no overflow for large |x|


def _class_scores(results: Any, item: Any, fn: ClassificationFunction | None) -> list[float]:
    """One input's label scores under `fn` (default: the model's own: softmax, sigmoid for multi-label, the value of a
    regression)."""
    if hasattr(results, "classes"):
        native = ClassificationFunction.Sigmoid if results.multi_label else ClassificationFunction.Softmax
        scores, raw = list(item.probs), item.logits
    else:  # a regression: its value, to which HF pipelines apply no function
        native, scores, raw = ClassificationFunction.Identity, [item.prediction], [item.prediction]
    if fn is None or fn == native:
        return scores
    if fn == ClassificationFunction.Softmax:
        raise ServeError(400, "function_to_apply='softmax' does not fit this model: it scores each label on its own "
                            "(multi-label, or a regression). Use 'sigmoid' or 'none', or leave it out.")
    if raw is None:
        raise ServeError(400, "function_to_apply needs the model's logits, which this model does not give; leave it out.")
    return [float(x) for x in raw] if fn == ClassificationFunction.Identity else [_sigmoid(x) for x in raw]


def _classified(results: Any, own: dict[str, Any], _: dict[str, Any]) -> list[Any]:
    """Per input, every label and its score, best first (`top_k` kept); a multi-label model's carry its threshold."""
    labels = list(results.classes) if hasattr(results, "classes") else [results.target]
    extra = {"threshold": results.threshold} if getattr(results, "multi_label", False) else {}
    out = []
    for item in results.items:
        scores = _class_scores(results, item, own["function_to_apply"])
        ranked = sorted(zip(labels, scores, strict=True), key=lambda pair: -pair[1])[: own["top_k"]]
        out.append([{"label": label, "score": score, **extra} for label, score in ranked])
    return out


def _entities(results: Any, own: dict[str, Any], options: dict[str, Any]) -> list[Any]:
    """Per input, its entities (`entity_group`; `entity`, the full tag, for aggregation_strategy none)."""
    ignore = set(own["ignore_labels"] or ())
    key = "entity" if str(options.get("aggregation_strategy", "")).lower() == "none" else "entity_group"
    return [
        [{key: e.label, "score": e.score, "word": e.text, "start": e.start, "end": e.end}
         for e in r.entities if e.label not in ignore]
        for r in results.items
    ]


def _span(answer: Any) -> dict[str, Any]:
    return {"answer": answer.text, "score": answer.score, "start": answer.start or 0, "end": answer.end or 0}


def _answers(results: Any, own: dict[str, Any], _: dict[str, Any]) -> list[Any]:
    """Per question, its best answer (no answer: "" at 0..0), or the best `top_k` (no answer among them) as a list."""
    top_k = own["top_k"]
    out: list[Any] = []
    for r in results.items:
        found = ([_span(r.answer)] if r.no_answer else []) + [_span(a) for a in r.best_n]
        out.append(found[0] if top_k in (None, 1) else found[:top_k])
    return out


def _fills(results: Any, own: dict[str, Any], _: dict[str, Any]) -> list[Any]:
    """Per text, the top-k fills of its mask (a list per mask when it has several)."""
    out = []
    for r in results.items:
        masks = [[{"score": c["score"], "token": c["token_id"], "token_str": c["token"], "sequence": c["sequence"]}
                  for c in m.candidates] for m in r.masks]
        out.append(masks[0] if len(masks) == 1 else masks)
    return out


def _generated(results: Any, own: dict[str, Any], _: dict[str, Any]) -> list[Any]:
    """Per prompt, `[{generated_text}]`: prompt and continuation, or the continuation alone (`return_full_text=false`)."""
    full = own["return_full_text"]
    return [[{"generated_text": r.prompt + r.continuation if full else r.continuation}] for r in results.items]


def _seq2seq(results: Any, own: dict[str, Any], _: dict[str, Any], key: str) -> list[Any]:
    return [{key: r.output} for r in results.items]


def _vectors(results: Any, own: dict[str, Any], _: dict[str, Any]) -> list[Any]:
    """Per text, its vector; `truncate=false` refuses texts longer than the model reads (TEI's 413)."""
    if own["truncate"] is False and any(r.truncated for r in results.items):
        raise ServeError(413, "An input is longer than the model reads; send truncate=true (keep its start) or shorter texts.")
    return [r.vector for r in results.items]


# ---------------------------------------------------------------------------------------------------
# parameters and input shapes, per task
# ---------------------------------------------------------------------------------------------------
def _top_k_checked(own: dict[str, Any]) -> None:
    if own.get("top_k") is not None and own["top_k"] < 1:
        raise ServeError(400, f"top_k must be a positive integer, got {own['top_k']!r}.")


def _classification_options(own: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    _top_k_checked(own)
    return options


def _qa_options(own: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Enough candidates for `top_k` answers."""
    _top_k_checked(own)
    if own["top_k"] is not None and "n_best_size" not in options:
        return {**options, "n_best_size": max(own["top_k"], _QA_CANDIDATES)}
    return options


def _embedding_options(own: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    if str(own["truncation_direction"]).lower() == "left":
        raise ServeError(400, "truncation_direction='Left' is not supported: adapt keeps the start of a long text (Right).")
    return options


def _text(x: Any) -> bool:
    return isinstance(x, str)


def _text_or_pair(x: Any) -> bool:
    return isinstance(x, str) or (isinstance(x, dict) and "text" in x and set(x) <= {"text", "text_pair"})


def _question(x: Any) -> bool:
    return isinstance(x, dict) and set(x) == {"question", "context"}


TOP_K = Option("top_k", int, None, "keep the k best (default: every label; question answering: the best answer alone)", 2)
_TEXTS = "a string or a list of strings"
_GENERATE = {"max_new_tokens": "num_tokens_to_produce"}
_TGI_ONLY = ("adapter_id", "best_of", "decoder_input_details", "details", "frequency_penalty", "grammar", "stop",
             "top_n_tokens", "truncate", "watermark")
_SEQ2SEQ_ONLY = ("clean_up_tokenization_spaces", "truncation", "src_lang", "tgt_lang")

HF_TASKS: dict[str, HFTask] = {
    "sequence_classification": HFTask(
        "text-classification", 'a string, {"text": ..., "text_pair": ...}, or a list of them', _text_or_pair, _classified,
        own=(TOP_K, Option("function_to_apply", ClassificationFunction, None, "softmax, sigmoid or none", "sigmoid")),
        prepare=_classification_options, listed=True,
    ),
    "token_classification": HFTask(
        "token-classification", _TEXTS, _text, _entities,
        own=(Option("ignore_labels", list, None, "entity labels to leave out", ["MISC"]),),
    ),
    "question_answering": HFTask(
        "question-answering", '{"question": ..., "context": ...} or a list of them', _question, _answers, own=(TOP_K,),
        renamed={"handle_impossible_answer": "allow_no_answer", "max_answer_len": "max_answer_length"},
        unsupported=("align_to_words", "doc_stride", "max_question_len", "max_seq_len"), prepare=_qa_options,
    ),
    "masked_language_modeling": HFTask("fill-mask", _TEXTS, _text, _fills, unsupported=("targets",)),
    "language_modeling": HFTask(
        "text-generation", _TEXTS, _text, _generated, renamed=_GENERATE, unsupported=_TGI_ONLY,
        own=(Option("return_full_text", bool, True, "the prompt and the continuation (false: the continuation)", False),),
    ),
    "summarization": HFTask(
        "summarization", _TEXTS, _text, partial(_seq2seq, key="summary_text"), renamed=_GENERATE,
        unsupported=_SEQ2SEQ_ONLY, listed=True, nested="generate_parameters",
    ),
    "translation": HFTask(
        "translation", _TEXTS, _text, partial(_seq2seq, key="translation_text"), renamed=_GENERATE,
        unsupported=_SEQ2SEQ_ONLY, listed=True, nested="generate_parameters",
    ),
    "embeddings": HFTask(
        "feature-extraction", _TEXTS, _text, _vectors, unsupported=("prompt_name",), prepare=_embedding_options,
        own=(Option("truncate", bool, None, "cut texts longer than the model reads (false: refuse them)", True),
             Option("truncation_direction", str, "Right", "Right: keep a long text's start", "Right")),
        listed=True, root_parameters=True,
    ),
}


def _task_of(served: Served) -> HFTask:
    hf = HF_TASKS.get(served.task)
    if hf is None:
        raise ServeError(400, f"{served.name!r} is a {served.task} model, which has no Hugging Face task JSON; "
                            "POST /predict serves it.")
    return hf


def _body_parts(body: Any, hf: HFTask) -> tuple[Any, dict[str, Any]]:
    """A request body's `inputs` and its parameters (`generate_parameters` and TEI's top-level ones included)."""
    if not isinstance(body, dict):
        raise ServeError(400, f'The body must be a JSON object: {{"inputs": {hf.shape}, "parameters": {{...}}}}.')
    extra = {k: v for k, v in body.items() if k not in _BODY_KEYS}
    if extra and not hf.root_parameters:
        raise ServeError(400, unknown_name("field", next(iter(extra)), _BODY_KEYS, "a request body"))
    if "inputs" not in body:
        raise ServeError(400, f"inputs is missing: send {hf.shape} as inputs.")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise ServeError(400, f"parameters must be an object of {hf.name} parameters, got {type(params).__name__}.")
    if body.get("stream"):
        raise ServeError(400, "Streaming is not supported here; leave stream out (or false).")
    params = {**extra, **params}
    inner = params.pop(hf.nested, None) if hf.nested else None
    if inner is not None:
        if not isinstance(inner, dict) or set(inner) & set(params):
            raise ServeError(400, f"{hf.nested} must be an object of generation parameters not also given beside it.")
        params.update(inner)
    return body["inputs"], params


def _items(inputs: Any, hf: HFTask) -> tuple[list[Any], bool]:
    """The inputs as a list, and whether one was sent alone; 400 naming the shape the task takes."""
    single = not isinstance(inputs, list)
    items = [inputs] if single else inputs
    if not items or not all(hf.accepts(x) for x in items):
        got = "an empty list" if not items else f"{type(inputs).__name__} {str(inputs)[:60]!r}"
        raise ServeError(400, f"This {hf.name} model takes inputs as {hf.shape}; got {got}.")
    return items, single


def _parameters(given: dict[str, Any], hf: HFTask, served: Served) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the parameters answered here, adapt's options): spec names renamed, adapt's names passed on, others refused."""
    unused = [name for name in given if name in hf.unsupported]
    if unused:
        raise ServeError(400, f"The following `model_kwargs` are not used by the model: {unused} (adapt's {hf.name} "
                            "does not take them); leave them out.")
    own_names = [o.name for o in hf.own]
    adapt_names = [o.name for o in served.options]
    own: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in given.items():
        if name in own_names:
            own[name] = value
        elif name in hf.renamed:
            if hf.renamed[name] in given:
                raise ServeError(400, f"{name} and {hf.renamed[name]} name the same setting; pass one of them.")
            options[hf.renamed[name]] = value
        elif name in adapt_names:
            options[name] = value
        else:
            accepted = [*own_names, *hf.renamed, *(n for n in adapt_names if n not in hf.renamed.values())]
            raise ServeError(400, unknown_name("parameter", name, accepted, hf.name))
    own = {**defaults(hf.own), **check_options(own, hf.own, hf.name, "parameter")}
    return own, hf.prepare(own, options) if hf.prepare else options


# ---------------------------------------------------------------------------------------------------
# the routes
# ---------------------------------------------------------------------------------------------------
def hf_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The error body of Inference Endpoints and TEI, `{"error", "error_type"}`, with `status`."""
    kind = _ERROR_TYPES.get(status, "backend" if status >= 500 else "validation")
    return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=dict(headers or {}) or None)


async def _answer(models: ModelSet, request: Request, name: str | None) -> JSONResponse:
    """One request to the model `name` (None: the default one), answered in its task's Hugging Face shape."""
    request.state.model = name or models.default
    try:
        served = models.get(name)
        hf = _task_of(served)
        inputs, given = _body_parts(await read_json(request), hf)
        items, single = _items(inputs, hf)
        own, options = _parameters(given, hf, served)
        served, results, _ = await models.predict(served.name, items, "low", options)
        answers = hf.answer(results, own, options)
    except ServeError as e:  # adapt's refusal of bad input (422 on /predict) is HF's 400
        return hf_error(400 if e.status == 422 else e.status, e.message, e.headers)
    except AdaptError as e:
        return hf_error(400, str(e))
    return JSONResponse(answers if hf.listed or not single else answers[0])


def add_hf_routes(app: FastAPI, models: ModelSet) -> None:
    """Add `POST /` (the default model) and `POST /models/{name}`, answering Hugging Face task JSON."""
    body = {"application/json": {"schema": HFRequest.model_json_schema()}}
    schema = {"requestBody": {"required": True, "content": body}}

    @app.post("/", openapi_extra=schema, tags=["huggingface"])
    async def hf_default(request: Request) -> JSONResponse:
        """Hugging Face task JSON for the served model (`InferenceClient(model="http://HOST:PORT")`)."""
        return await _answer(models, request, None)

    @app.post("/models/{name}", openapi_extra=schema, tags=["huggingface"])
    async def hf_named(name: str, request: Request) -> JSONResponse:
        """Hugging Face task JSON for the served model `name` (`InferenceClient(model="http://HOST:PORT/models/NAME")`)."""
        return await _answer(models, request, name)
