"""Task-agnostic inference: validate -> encode (truncate or window) -> length-sorted batches -> forward.

Shared by `Tuner.predict`, the `Easy*` modules and the server. Imports torch lazily; never fastai or flair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from .enums import LongText
from .errors import InvalidInputError

logger = logging.getLogger(__name__)

Text = Union[str, tuple[str, str]]

__all__ = [
    "Text",
    "normalize_texts",
    "Encoded",
    "encode",
    "forward_logits",
    "model_max_length",
    "resolve_max_length",
    "softmax",
    "EasyBase",
]


def _check_str(x: object, where: str) -> str:
    if x is None:
        raise InvalidInputError(f"{where} is None; pass a non-empty string.")
    if not isinstance(x, str):
        raise InvalidInputError(f"{where} is a {type(x).__name__}, not a string: {x!r:.80}. Pass text as str.")
    if not x.strip():
        raise InvalidInputError(f"{where} is empty or whitespace; pass a non-empty string.")
    return x


def normalize_texts(text: Any, allow_pairs: bool = True) -> tuple[list[Text], bool]:
    """Validate one text or a list of texts; return (list, was_single). Pairs are `(text, text_pair)` tuples."""
    single = isinstance(text, str) or (allow_pairs and isinstance(text, tuple))
    items = [text] if single else text
    if items is None or isinstance(items, (bytes, dict)) or not isinstance(items, Sequence):
        raise InvalidInputError(f"Expected a string or a list of strings, got {type(text).__name__}.")
    if len(items) == 0:
        raise InvalidInputError("Got an empty list of texts; pass at least one non-empty string.")
    out: list[Text] = []
    for i, item in enumerate(items):
        where = "text" if single else f"texts[{i}]"
        if isinstance(item, tuple) and allow_pairs:
            if len(item) != 2:
                raise InvalidInputError(f"{where} is a tuple of {len(item)}; a sentence pair is (text, text_pair).")
            out.append((_check_str(item[0], f"{where}[0]"), _check_str(item[1], f"{where}[1]")))
        else:
            out.append(_check_str(item, where))
    if len({isinstance(t, tuple) for t in out}) > 1:
        raise InvalidInputError("Mix of single texts and (text, text_pair) pairs; pass them in separate calls.")
    return out, single


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
    if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool) or requested < 2):
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
    if not isinstance(max_length, int) or max_length < 2:
        raise InvalidInputError(f"max_length must be an integer >= 2, got {max_length!r}.")
    stride = max_length // 4 if stride is None else stride
    if not isinstance(stride, int) or not 0 <= stride < max_length // 2:
        raise InvalidInputError(f"stride (window overlap) must be an integer in [0, {max_length // 2}), got {stride!r}.")
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError("adapt needs a fast (Rust) tokenizer for windows and offsets; this model only has a slow one.")
    pairs = bool(texts) and isinstance(texts[0], tuple)
    firsts = [t[0] for t in texts] if pairs else list(texts)
    seconds = [t[1] for t in texts] if pairs else None
    if pairs and long_text is LongText.Truncate:
        # pairs: trim the longer text first, as in training; overflow windows only exist for the second text
        enc = tokenizer(
            firsts,
            seconds,
            truncation="longest_first",
            max_length=max_length,
            return_attention_mask=True,
            return_offsets_mapping=return_offsets,
        )
        full = tokenizer(firsts, seconds, truncation=False, return_attention_mask=False)["input_ids"]
        enc["overflow_to_sample_mapping"] = list(range(len(texts)))
        n_full = [len(ids) for ids in full]
        truncated = [n > max_length for n in n_full]
        return _finish(enc, texts, max_length, long_text, return_word_ids, return_sequence_ids, truncated=truncated)
    try:
        enc = tokenizer(
            firsts,
            seconds,
            truncation="only_second" if pairs else True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=return_offsets,
            return_attention_mask=True,
        )
    except BaseException as e:  # noqa: BLE001 - the Rust tokenizer panics on impossible windows
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise InvalidInputError(
            f"Cannot split these inputs into windows of {max_length} tokens with overlap {stride} "
            f"(is a first text of a pair longer than that?): {e}"
        ) from None
    return _finish(enc, texts, max_length, long_text, return_word_ids, return_sequence_ids)


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
    features = {key: [enc[key][k] for k in keep] for key in enc.keys()}
    if truncated is not None:  # pairs in truncate mode: one row each, flagged from their full length
        n_windows = [2 if t else 1 for t in truncated]
    n_truncated = sum(n > 1 for n in n_windows)
    if n_truncated and long_text is LongText.Truncate:
        logger.warning(
            "%d of %d inputs exceed max_length=%d tokens and were truncated (use long_text='window' to keep all text)",
            n_truncated,
            len(texts),
            max_length,
        )
    return Encoded(
        features=features,
        sample_ids=[mapping[k] for k in keep],
        n_windows=n_windows,
        offsets=[offsets[k] for k in keep] if offsets is not None else None,
        word_ids=[enc.word_ids(k) for k in keep] if return_word_ids else None,
        sequence_ids=[enc.sequence_ids(k) for k in keep] if return_sequence_ids else None,
    )


def _pad_batch(
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

    if batch_size < 1:
        raise InvalidInputError(f"batch size must be >= 1, got {batch_size}.")
    names = [n for n in tokenizer.model_input_names if n in encoded.features]
    lengths = [len(ids) for ids in encoded.features["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = getattr(model, "device", None) or next(model.parameters()).device
    results: list[Any] = [None] * len(order)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = {k: v.to(device) for k, v in _pad_batch(encoded.features, idx, pad_id, names).items()}
                out = model(**batch)
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
        model.train(was_training)
    return results


class EasyBase:
    """Base of the `Easy*` modules: loads each model once per instance and caches it by path and device.

    A task sets which transformers auto class and head it loads, the flair class it accepts, and the two
    predictor classes (with the same `predict(texts, batch_size, **kwargs)`) that wrap a loaded model.
    """

    task: ClassVar[str]
    auto_class: ClassVar[str]
    hf_head: ClassVar[str | tuple[str, ...]]
    flair_class: ClassVar[str | None] = None
    hf_predictor: ClassVar[Any]
    flair_predictor: ClassVar[Any] = None
    allow_pairs: ClassVar[bool] = False

    PRECISIONS: ClassVar[tuple[str, ...]] = ("auto", "fp32", "int8", "onnx")

    def __init__(self, device: Any = None, precision: str = "auto") -> None:
        if precision not in self.PRECISIONS:
            from .errors import InvalidChoiceError

            raise InvalidChoiceError(f"precision must be one of {list(self.PRECISIONS)}, got {precision!r}.")
        self.device = device
        # auto, on CPU: the exported ONNX copy (when onnxruntime is installed), else the int8 copy, else fp32
        self.precision = precision
        self._cache: dict[tuple[str, str], Any] = {}

    def _load(self, model_name_or_path: Any) -> Any:
        from .modelio import load_flair_model, load_hf_model, resolve_model_source
        from .utils import default_device

        src = resolve_model_source(model_name_or_path)
        if src.kind == "flair":
            if self.flair_class is None:
                from .errors import WrongTaskError

                raise WrongTaskError(f"{src.location!r} is a flair model; {type(self).__name__} needs a transformers model.")
            return self.flair_predictor(load_flair_model(src, self.flair_class))
        device = default_device(self.device)
        model, tokenizer = load_hf_model(src, self.auto_class, self.task, self.hf_head, device)
        return self.hf_predictor.from_model(self._fast_path(model, src, device), tokenizer, src.manifest)

    def _fast_path(self, model: Any, src: Any, device: Any) -> Any:
        """The model to run: fp32, the int8 copy or the ONNX Runtime copy, as `precision` asks."""
        from pathlib import Path

        from .errors import CorruptModelError
        from .ort import OnnxRuntimeModel, onnx_available

        manifest = src.manifest or {}
        onnx, q = manifest.get("onnx"), manifest.get("quantized")
        choice = self.precision
        if choice == "auto":
            on_cpu = device.type == "cpu"
            choice = "onnx" if on_cpu and onnx and onnx_available() else "int8" if on_cpu and q else "fp32"
        if choice == "fp32":
            return model
        saved = onnx if choice == "onnx" else q
        if not saved:
            how = "onnx=True" if choice == "onnx" else "quantize=True"
            raise CorruptModelError(f"{src.location!r} has no {choice} copy; export it with {how}.")
        if choice == "onnx":
            return OnnxRuntimeModel(Path(src.location) / saved["file"], model.config)
        from .quantize import load_int8

        return load_int8(model, Path(src.location) / saved["file"])

    def get_model(self, model_name_or_path: Any) -> Any:
        """Return the cached loaded model for this path, loading it on first use."""
        from .utils import default_device

        key = (str(model_name_or_path), str(default_device(self.device)))
        if key not in self._cache:
            self._cache[key] = self._load(model_name_or_path)
        return self._cache[key]

    def tag_text(
        self, text: Any, model_name_or_path: Any, mini_batch_size: int = 32, detail_level: Any = "low", **kwargs: Any
    ) -> dict[str, Any]:
        """Predict for one input or a list; a JSON-safe dict with lists of length 1 for a single input."""
        from .enums import DetailLevel

        level = DetailLevel(detail_level)
        texts, _ = normalize_texts(text, allow_pairs=self.allow_pairs)
        return self.get_model(model_name_or_path).predict(texts, batch_size=mini_batch_size, **kwargs).to_dict(level)

    def tag_all(self, text: Any, mini_batch_size: int = 32, detail_level: Any = "low", **kwargs: Any) -> dict[str, Any]:
        """Run every model loaded so far on `text`; returns `{model_name_or_path: result}`."""
        if not self._cache:
            raise ValueError("No models loaded yet; call tag_text(text, model_name_or_path) first.")
        return {
            name: self.tag_text(text, name, mini_batch_size=mini_batch_size, detail_level=detail_level, **kwargs)
            for name, _device in list(self._cache)
        }

    def release(self) -> None:
        """Drop every cached model."""
        self._cache.clear()
