"""Task-agnostic inference: validate -> encode (truncate or window) -> length-sorted batches -> forward.

`prepare` / `run` / `predict_json` are the one front door of prediction, shared by `Tuner.predict`, the
`Easy*` verbs, `adapt predict` and `POST /predict`. Imports torch lazily; never fastai or flair.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Union

from .enums import DetailLevel, LongText
from .errors import InvalidInputError, is_count

logger = logging.getLogger(__name__)

Text = Union[str, tuple[str, str]]  # noqa: UP007 - a runtime alias, also for Python 3.10

__all__ = [
    "TEXT",
    "TEXT_PAIR",
    "Encoded",
    "Field",
    "HFPredictor",
    "PredictCall",
    "Predictor",
    "Text",
    "check_batch_size",
    "check_text",
    "encode",
    "forward_logits",
    "model_max_length",
    "normalize_inputs",
    "normalize_strings",
    "normalize_texts",
    "note_truncated",
    "pad_batch",
    "predict_json",
    "prepare",
    "resolve_max_length",
    "rows_keywords",
    "run",
    "softmax",
    "truncated_inputs",
]


@dataclass(frozen=True)
class Field:
    """One input field of a task (`text`, `text_pair`, `question`, `context`, ...)."""

    name: str
    required: bool = True
    allow_empty: bool = False  # generation prompts may be empty (the model starts from BOS)


TEXT = (Field("text"),)
TEXT_PAIR = (Field("text"), Field("text_pair", required=False))


def check_text(x: object, where: str, allow_empty: bool = False) -> str:
    """`x` if it is a string the tokenizers can encode, else `InvalidInputError` naming `where`."""
    if x is None:
        raise InvalidInputError(f"{where} is None; pass a non-empty string.")
    if not isinstance(x, str):
        raise InvalidInputError(f"{where} is a {type(x).__name__}, not a string: {x!r:.80}. Pass text as str.")
    if not allow_empty and not x.strip():
        raise InvalidInputError(f"{where} is empty or whitespace; pass a non-empty string.")
    try:
        x.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInputError(
            f"{where} is not valid Unicode text (a lone surrogate {x[e.start]!r} at character {e.start}); "
            "send UTF-8 text."
        ) from None
    return x


def _item(item: Any, fields: Sequence[Field], where: str) -> Text:
    names = [f.name for f in fields]
    n_required = sum(f.required for f in fields)
    if isinstance(item, dict):
        unknown = sorted(set(item) - set(names))
        missing = [f.name for f in fields if f.required and f.name not in item]
        if unknown or missing:
            raise InvalidInputError(f"{where} must have the fields {names} ({n_required} required); got {sorted(item)}.")
        values = [item[f.name] for f in fields if f.name in item]
    elif isinstance(item, tuple) and len(fields) > 1:
        if not n_required <= len(item) <= len(fields):
            raise InvalidInputError(f"{where} is a tuple of {len(item)}; this task takes ({', '.join(names)}).")
        values = list(item)
    elif n_required > 1:
        raise InvalidInputError(
            f"{where} is a {type(item).__name__}; this task needs {' and '.join(names)}: pass an object "
            f"with those fields or a tuple."
        )
    else:
        values = [item]
    named = len(values) > 1
    checked = [
        check_text(v, f"{where}.{f.name}" if named else where, f.allow_empty) for v, f in zip(values, fields, strict=False)
    ]
    return checked[0] if len(checked) == 1 else (checked[0], checked[1])


def normalize_inputs(raw: Any, fields: Sequence[Field] = TEXT) -> tuple[list[Text], bool]:
    """Validate one input or a list; return (list, was_single). An input is a string, a tuple or a dict of `fields`.

    Items may mix forms (a string and a `{"text", "text_pair"}` object in one list); each is checked on its own.
    """
    single = isinstance(raw, (str, dict)) or (isinstance(raw, tuple) and len(fields) > 1)
    items = [raw] if single else raw
    if items is None or isinstance(items, (bytes, str, dict)) or not isinstance(items, Sequence):
        raise InvalidInputError(f"Expected a string or a list of strings, got {type(raw).__name__}.")
    if len(items) == 0:
        raise InvalidInputError("Got an empty list of texts; pass at least one non-empty string.")
    return [_item(x, fields, "text" if single else f"texts[{i}]") for i, x in enumerate(items)], single


def normalize_strings(raw: Any) -> list[str]:
    """One text or a list of texts, checked, as a list of strings."""
    inputs, _ = normalize_inputs(raw, TEXT)
    return [t for t in inputs if isinstance(t, str)]


def normalize_texts(text: Any, allow_pairs: bool = True) -> tuple[list[Text], bool]:
    """`normalize_inputs` for texts, or `(text, text_pair)` pairs when `allow_pairs`."""
    return normalize_inputs(text, TEXT_PAIR if allow_pairs else TEXT)


def model_max_length(model: Any, tokenizer: Any, cap: int = 512) -> int:
    """The longest input the model accepts: tokenizer and position-embedding limits, capped at `cap`."""
    limits = [cap]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos - 2 if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else pos)
    return min(limits)


def resolve_max_length(requested: Any, saved: int | None, limit: int) -> int:
    """The max_length to encode with: the caller's, else the trained one, never above the model's limit."""
    if requested is not None and (not is_count(requested, 2)):
        raise InvalidInputError(f"max_length must be an integer >= 2, got {requested!r}.")
    return min(requested or saved or limit, limit)


def softmax(x: Any) -> Any:
    """Numerically stable softmax over the last axis of a NumPy array."""
    import numpy as np

    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Encoded:
    """Tokenized windows of a list of inputs: `features[k]` belongs to input `sample_ids[k]`."""

    features: dict[str, list[list[int]]]
    sample_ids: list[int]
    n_windows: list[int]
    offsets: list[list[tuple[int, int]]] | None = None
    word_ids: list[list[int | None]] | None = None
    sequence_ids: list[list[int | None]] | None = None

    def __len__(self) -> int:
        return len(self.sample_ids)


def encode(
    tokenizer: Any,
    texts: Sequence[Text],
    max_length: int,
    long_text: LongText | str = LongText.Truncate,
    stride: int | None = None,
    return_offsets: bool = False,
    return_word_ids: bool = False,
    return_sequence_ids: bool = False,
) -> Encoded:
    """Tokenize all texts at once. Truncate keeps the first window; Window keeps every overlapping window.

    Either way `n_windows` counts the windows each input needs, so truncation is never silent.
    """
    long_text = LongText(long_text)
    stride = _checked_stride(tokenizer, max_length, stride)
    kinds = [isinstance(t, tuple) for t in texts]
    if len(set(kinds)) > 1:  # single texts and pairs in one call: encode each group, then merge in input order
        groups = [[i for i, k in enumerate(kinds) if k is kind] for kind in (False, True)]
        parts = [
            encode(tokenizer, [texts[i] for i in g], max_length, long_text, stride, return_offsets, return_word_ids,
                   return_sequence_ids)
            for g in groups
        ]
        return _merge(parts, groups, len(texts))
    pairs = bool(texts) and isinstance(texts[0], tuple)
    firsts = [t[0] for t in texts] if pairs else list(texts)
    seconds = [t[1] for t in texts] if pairs else None
    if seconds is not None and long_text is LongText.Truncate:
        enc, truncated = _encode_truncated_pairs(tokenizer, firsts, seconds, max_length, return_offsets)
        return _finish(enc, texts, max_length, long_text, return_word_ids, return_sequence_ids, truncated=truncated)
    enc = _encode_windows(tokenizer, firsts, seconds, max_length, stride, return_offsets)
    return _finish(enc, texts, max_length, long_text, return_word_ids, return_sequence_ids)


def _checked_stride(tokenizer: Any, max_length: int, stride: int | None) -> int:
    """The window overlap (default a quarter of `max_length`), after checking `max_length`, it and the tokenizer."""
    if not isinstance(max_length, int) or max_length < 2:
        raise InvalidInputError(f"max_length must be an integer >= 2, got {max_length!r}.")
    stride = max_length // 4 if stride is None else stride
    if not isinstance(stride, int) or not 0 <= stride < max_length // 2:
        raise InvalidInputError(f"stride (window overlap) must be an integer in [0, {max_length // 2}), got {stride!r}.")
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(slow_tokenizer_message(tokenizer))
    return stride


def _encode_truncated_pairs(
    tokenizer: Any, firsts: list[Any], seconds: list[Any], max_length: int, return_offsets: bool
) -> tuple[Any, list[bool]]:
    """(one window per pair, which pairs were cut): the longer text is trimmed first, as in training."""
    # overflow windows only exist for the second text, so truncation is found from the untruncated lengths
    enc = tokenizer(
        firsts,
        seconds,
        truncation="longest_first",
        max_length=max_length,
        return_attention_mask=True,
        return_offsets_mapping=return_offsets,
    )
    full = tokenizer(firsts, seconds, truncation=False, return_attention_mask=False)["input_ids"]
    enc["overflow_to_sample_mapping"] = list(range(len(firsts)))
    n_full = [len(ids) for ids in full]
    return enc, [n > max_length for n in n_full]


def _encode_windows(
    tokenizer: Any, firsts: list[Any], seconds: list[Any] | None, max_length: int, stride: int, return_offsets: bool
) -> Any:
    """Every overlapping window of each text (of each pair's second text, beside its whole first text)."""
    pairs = seconds is not None
    if pairs:
        stride = _pair_stride(tokenizer, firsts, max_length, stride)
    try:
        return tokenizer(
            firsts,
            seconds,
            truncation="only_second" if pairs else True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=return_offsets,
            return_attention_mask=True,
        )
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise InvalidInputError(
            f"Cannot split these inputs into windows of {max_length} tokens with overlap {stride} "
            f"(is a first text of a pair longer than that?): {e}"
        ) from None


def _finish(
    enc: Any,
    texts: Sequence[Text],
    max_length: int,
    long_text: LongText,
    return_word_ids: bool,
    return_sequence_ids: bool = False,
    truncated: list[bool] | None = None,
) -> Encoded:
    mapping = list(enc.pop("overflow_to_sample_mapping"))
    offsets = enc.pop("offset_mapping", None)
    n_windows = [0] * len(texts)
    for s in mapping:
        n_windows[s] += 1
    keep = list(range(len(mapping)))
    if long_text is LongText.Truncate:
        first_seen: set[int] = set()
        keep = [k for k, s in enumerate(mapping) if not (s in first_seen or first_seen.add(s))]  # type: ignore[func-returns-value]
    features = {key: [enc[key][k] for k in keep] for key in enc}
    if truncated is not None:  # pairs in truncate mode: one row each, flagged from their full length
        n_windows = [2 if t else 1 for t in truncated]
    n_truncated = sum(n > 1 for n in n_windows)
    if n_truncated and long_text is LongText.Truncate:
        note_truncated(n_truncated, f"exceeded max_length={max_length} tokens and were truncated (long_text='window' keeps all)")
    return Encoded(
        features=features,
        sample_ids=[mapping[k] for k in keep],
        n_windows=n_windows,
        offsets=[_trimmed(offsets[k], texts[mapping[k]], enc, k) for k in keep] if offsets is not None else None,
        word_ids=[enc.word_ids(k) for k in keep] if return_word_ids else None,
        sequence_ids=[enc.sequence_ids(k) for k in keep] if return_sequence_ids else None,
    )


def slow_tokenizer_message(tokenizer: Any) -> str:
    return (f"{type(tokenizer).__name__} is a slow (Python) tokenizer, and this task needs a fast (Rust) one for windows "
            "and character offsets: load it with AutoTokenizer (use_fast=True); some families (Marian) have none.")


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """`(start, end)` narrowed to leave out whitespace at either edge (a whitespace-only span becomes empty at its
    end): SentencePiece and some byte-level tokenizers count the space before a word into the word's first token
    (transformers#18111), so spans built from their offsets began one character early."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _trimmed(offsets: Sequence[Sequence[int]], text: Text, enc: Any, k: int) -> list[tuple[int, int]]:
    """Window `k`'s token offsets, each trimmed of whitespace in the text it points into (of a pair: by sequence id).
    Per token on every tagged or answered window, so the common case (no space at either edge) is one test."""
    texts = (text,) if isinstance(text, str) else text
    seq = [0] * len(offsets) if isinstance(text, str) else enc.sequence_ids(k)
    space = str.isspace
    return [
        (s, e) if q is None or s == e or not (space(texts[q][s]) or space(texts[q][e - 1])) else trim_span(texts[q], s, e)
        for (s, e), q in zip(offsets, seq, strict=True)
    ]


_truncation = {"total": 0, "since_log": 0, "last_log": 0.0}
_truncation_lock = threading.Lock()
TRUNCATION_LOG_SECONDS = 60.0


def note_truncated(n: int, what: str) -> None:
    """Count `n` inputs cut to the model's length; log it at most once a minute (with the count since), not per batch."""
    import time

    with _truncation_lock:
        _truncation["total"] += n
        _truncation["since_log"] += n
        now = time.monotonic()
        if now - _truncation["last_log"] < TRUNCATION_LOG_SECONDS:
            return
        count, _truncation["since_log"], _truncation["last_log"] = _truncation["since_log"], 0, now
    logger.warning("%d inputs %s (logged at most once a minute)", count, what)


def truncated_inputs() -> int:
    """How many inputs this process has cut to a model's length (the server's `adapt_truncated_inputs` metric)."""
    return int(_truncation["total"])


def _pair_stride(tokenizer: Any, firsts: Sequence[Any], max_length: int, stride: int) -> int:
    """The window overlap that leaves every pair's second text room beside its (never split) first text."""
    lengths = [len(ids) for ids in tokenizer(list(firsts), add_special_tokens=False)["input_ids"]]
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - max(lengths)
    if room < 2:
        i = max(range(len(lengths)), key=lengths.__getitem__)
        raise InvalidInputError(
            f"Input {i}'s first text (e.g. a question) is {lengths[i]} tokens: with max_length={max_length} there is no "
            "room left for its second text. Shorten it or use a larger max_length."
        )
    if stride >= room:
        logger.debug("window overlap %d lowered to %d to leave room beside the longest first text", stride, room - 1)
    return min(stride, room - 1)


def _merge(parts: Sequence[Encoded], groups: Sequence[Sequence[int]], n: int) -> Encoded:
    """One `Encoded` from encodings of disjoint groups of inputs (`groups[g]` are the input indices of `parts[g]`)."""
    n_windows = [0] * n
    merged = Encoded(features={k: [] for k in parts[0].features}, sample_ids=[], n_windows=n_windows)
    for part, idx in zip(parts, groups, strict=True):
        for key in merged.features:
            merged.features[key].extend(part.features.get(key) or [[0] * len(ids) for ids in part.features["input_ids"]])
        merged.sample_ids.extend(idx[s] for s in part.sample_ids)
        for j, w in enumerate(part.n_windows):
            n_windows[idx[j]] = w
        for name in ("offsets", "word_ids", "sequence_ids"):
            got = getattr(part, name)
            if got is not None:
                setattr(merged, name, (getattr(merged, name) or []) + list(got))
    return merged


def pad_batch(
    features: dict[str, list[list[int]]], idx: Sequence[int], pad_id: int, names: Sequence[str], left: bool = False
) -> dict[str, Any]:
    """Pad the rows `idx` of each feature to the batch's longest row (vectorized, no per-row tensor ops).

    Right padding by default; `left=True` for decoder-only generation, which continues from the last position.
    """
    import numpy as np
    import torch

    lengths = np.fromiter((len(features["input_ids"][i]) for i in idx), dtype=np.int64, count=len(idx))
    width = int(lengths.max())
    mask = np.arange(width) >= (width - lengths)[:, None] if left else np.arange(width) < lengths[:, None]
    out = {}
    for key in names:
        arr = np.full(mask.shape, pad_id if key == "input_ids" else 0, dtype=np.int64)
        arr[mask] = np.fromiter((t for i in idx for t in features[key][i]), dtype=np.int64, count=int(lengths.sum()))
        out[key] = torch.from_numpy(arr)
    return out


# most padded tokens in one forward call on CPU (on GPUs 16x more): 32 windows of 16 tokens, or 1 of 512.
# Attention memory grows with the square of the length, so a fixed number of rows per call made a MiniLM server
# answering 512-token texts peak at 1.65 GB instead of 0.60 GB; on CPU the smaller calls are no slower.
MAX_BATCH_TOKENS = 512


def token_batches(
    order: Sequence[int], lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Consecutive batches of `order` (longest first) of at most `batch_size` rows and `max_tokens` padded tokens."""
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = max([lengths[j] for j in cur[:1]] + [lengths[i]])  # the first row is the longest (sorted)
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * width > max_tokens):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def forward_logits(
    model: Any,
    tokenizer: Any,
    encoded: Encoded,
    batch_size: int = 32,
    positions: Sequence[Sequence[int]] | None = None,
    output_keys: Sequence[str] = ("logits",),
) -> list[Any]:
    """Run the model over `encoded` windows in length-sorted, per-batch padded batches.

    Returns one float32 numpy array of logits per window, in the original window order. With `positions`, only
    the logits at `positions[k]` of window `k` are kept (e.g. the masks of a fill-mask model, whose full
    logits would be vocabulary-sized at every token). With several `output_keys` (e.g. a QA model's
    `start_logits` and `end_logits`), each window's array stacks them: shape `(len(output_keys), n_tokens)`.
    """
    import torch

    check_batch_size(batch_size)
    names = [n for n in tokenizer.model_input_names if n in encoded.features]
    lengths = [len(ids) for ids in encoded.features["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = getattr(model, "device", None) or next(model.parameters()).device
    results: list[Any] = [None] * len(order)
    was_training = model.training
    if was_training:  # (each switch walks every module: 11 ms a call for a base with 8 adapters)
        model.eval()
    try:
        with torch.inference_mode():
            budget = MAX_BATCH_TOKENS * (1 if getattr(device, "type", "cpu") == "cpu" else 16)
            for idx in progress(list(token_batches(order, lengths, batch_size, budget)), len(order)):
                batch = {k: v.to(device) for k, v in pad_batch(encoded.features, idx, pad_id, names).items()}
                route = _ROWS_KEYWORDS.get()
                out = model(**batch, **(route([encoded.sample_ids[i] for i in idx]) if route else {}))
                keys = list(output_keys)
                logits = getattr(out, keys[0]) if len(keys) == 1 else torch.stack([getattr(out, k) for k in keys], 1)
                if positions is not None:
                    for row, i in enumerate(idx):
                        results[i] = logits[row, list(positions[i])].float().cpu().numpy()
                    continue
                logits = logits.float().cpu().numpy()
                for row, i in enumerate(idx):
                    results[i] = logits[row]
    finally:
        if was_training:
            model.train(True)
    return results


_ROWS_KEYWORDS: contextvars.ContextVar[Callable[[list[int]], dict[str, Any]] | None] = contextvars.ContextVar(
    "adapt_rows_keywords", default=None)


@contextlib.contextmanager
def rows_keywords(keywords: Callable[[list[int]], dict[str, Any]]) -> Iterator[None]:
    """Inside, `forward_logits` passes `keywords(inputs)` to each model call, `inputs` being the input index of each
    row of the call (e.g. peft's `adapter_names`, one per row, when requests for several adapters share a call)."""
    token = _ROWS_KEYWORDS.set(keywords)
    try:
        yield
    finally:
        _ROWS_KEYWORDS.reset(token)


class Predictor(Protocol):
    """What the front door needs of a task's predictor: its declared options and `predict`."""

    options: ClassVar[tuple[Any, ...]]

    def predict(self, texts: Sequence[Any], /, *args: Any, **kwargs: Any) -> Any: ...


class HFPredictor(Predictor, Protocol):
    """A predictor over a loaded transformers model, built from the model, its tokenizer and `adapt.json`."""

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class PredictCall:
    """A validated prediction request: inputs, checked options, the detail level and what it asks to compute."""

    inputs: list[Text]
    options: dict[str, Any]
    level: DetailLevel
    single: bool = False

    @property
    def compute(self) -> dict[str, Any]:
        """Predictor keywords that depend on the detail level (token scores only at High)."""
        return {"scores": self.level.at_least(DetailLevel.High)}


def prepare(
    predictor: Predictor,
    raw: Any,
    fields: Sequence[Field],
    detail_level: DetailLevel | str = DetailLevel.Low,
    options: dict[str, Any] | None = None,
    where: str = "",
) -> PredictCall:
    """Normalise `raw` inputs, read the detail level and check `options` against the predictor's declared ones."""
    from .options import check_options

    level = DetailLevel(detail_level)
    inputs, single = normalize_inputs(raw, fields)
    opts = check_options(options or {}, predictor.options, where or "prediction")
    return PredictCall(inputs, opts, level, single)


PROGRESS_MIN_INPUTS = 300  # the Easy verbs and Tuner.predict show a progress bar above this many inputs
_SHOW_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("adapt_show_progress", default=False)


def progress(batches: list[Any], n_inputs: int) -> Any:
    """`batches`, under a tqdm bar on stderr when the front door asked for one (the server never does)."""
    if not _SHOW_PROGRESS.get():
        return batches
    from tqdm import tqdm

    return tqdm(batches, desc=f"predicting {n_inputs} inputs", unit="batch", leave=False, file=sys.stderr)


def _progress_wanted(n_inputs: int) -> bool:
    from .utils import progress_off

    return n_inputs > PROGRESS_MIN_INPUTS and not progress_off()


def run(predictor: Predictor, call: PredictCall, batch_size: int = 32) -> Any:
    """Run a prepared call; the predictor gets the detail-dependent keywords it declares (`scores`)."""
    check_batch_size(batch_size)
    compute = call.compute if getattr(predictor, "computes_scores", False) else {}
    return predictor.predict(call.inputs, batch_size=batch_size, **compute, **call.options)


def predict_json(
    predictor: Predictor,
    raw: Any,
    fields: Sequence[Field],
    batch_size: int = 32,
    detail_level: DetailLevel | str = DetailLevel.Low,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one front door: prepare -> run -> `to_dict(level)`, shared by Tuner.predict, Easy*, the CLI and REST."""
    call = prepare(predictor, raw, fields, detail_level, options)
    with showing_progress(len(call.inputs)):
        result: dict[str, Any] = run(predictor, call, batch_size).to_dict(call.level)
    return result


@contextlib.contextmanager
def showing_progress(n_inputs: int) -> Iterator[None]:
    """Inside, model calls show a progress bar when `n_inputs` is large (and ADAPT_PROGRESS is not 0): the Easy
    verbs, `Tuner.predict` and `adapt predict` use it; the server never does."""
    token = _SHOW_PROGRESS.set(_progress_wanted(n_inputs))
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


def check_batch_size(batch_size: Any) -> int:
    """`batch_size` if it is a positive integer, else `InvalidInputError`."""
    if not is_count(batch_size):
        raise InvalidInputError(f"batch size must be a positive integer, got {batch_size!r}.")
    return batch_size

