"""Sentence embeddings: one vector per text from a sentence-transformers style folder, on torch and transformers alone.

An embedding folder is what sentence-transformers saves: a transformer (config, weights, tokenizer), `modules.json`
naming a `Pooling` module, whose `1_Pooling/config.json` says how the token vectors become one (mean, cls, max, ...),
and optionally a `Normalize` module (vectors of length 1). `load_embedder` reads one into an `EmbeddingPredictor`
(sentence-transformers itself is not needed); `save_embedder` writes one from any transformers model, with an
`adapt.json` (task "embeddings") whose checksums every load verifies. `EasySentenceEmbeddings.embed`, the server's
`POST /predict` and OpenAI's `POST /v1/embeddings` go through the same predictor, so they give the same vectors.
Importing this module imports neither torch nor transformers; fastai and flair never.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .enums import ChoiceEnum, DetailLevel
from .errors import (
    CorruptModelError,
    InvalidInputError,
    ModelNotFoundError,
    TargetExistsError,
    WrongTaskError,
    is_count,
)
from .inference import TEXT, encode, forward_logits, model_max_length, normalize_strings, predict_json
from .options import Option, batch_size_option, check_options
from .results import Results

logger = logging.getLogger(__name__)

__all__ = [
    "EasySentenceEmbeddings",
    "EmbeddingConfig",
    "EmbeddingPredictor",
    "SentenceEmbedding",
    "SentenceEmbeddings",
    "SentencePooling",
    "is_embedding_folder",
    "load_embedder",
    "read_embedding_config",
    "save_embedder",
]

TASK = "embeddings"  # the task an embedding folder's adapt.json names
MODULES_FILE = "modules.json"
ST_CONFIG = "sentence_bert_config.json"  # the transformer module's max_seq_length and do_lower_case
_ST_MODULES = "sentence_transformers.models."
_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")


class SentencePooling(ChoiceEnum):
    """How the token vectors of a text become one vector (sentence-transformers' `Pooling` modes).

    - `mean`: the average of the token vectors (padding left out)
    - `cls`: the first token's (`[CLS]`) vector
    - `max`: the largest value of each dimension over the tokens
    - `mean_sqrt_len_tokens`: the sum divided by the square root of the number of tokens
    - `weightedmean`: the average weighted by position (1, 2, ...), for decoder models
    - `lasttoken`: the last token's vector, for decoder models
    """

    Mean = "mean"
    CLS = "cls"
    Max = "max"
    MeanSqrtLen = "mean_sqrt_len_tokens"
    WeightedMean = "weightedmean"
    LastToken = "lasttoken"


# the Pooling config key of each mode, in the order sentence-transformers concatenates several
_POOLING_KEYS = {
    SentencePooling.CLS: "pooling_mode_cls_token",
    SentencePooling.Max: "pooling_mode_max_tokens",
    SentencePooling.Mean: "pooling_mode_mean_tokens",
    SentencePooling.MeanSqrtLen: "pooling_mode_mean_sqrt_len_tokens",
    SentencePooling.WeightedMean: "pooling_mode_weightedmean_tokens",
    SentencePooling.LastToken: "pooling_mode_lasttoken",
}


# ---------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------
@dataclass
class SentenceEmbedding:
    """One text's vector, the tokens the model read for it (special tokens included) and whether it was cut to fit."""

    text: str
    vector: list[float]
    tokens: int
    truncated: bool = False


@dataclass
class SentenceEmbeddings(Results):
    """One vector per input, all of `dimensions` floats (of length 1 when `normalized`).

    Example:
        >>> EmbeddingPredictor(model, tokenizer).predict(["Shares fell"]).to_dict()["embeddings"]  # [[0.01, ...]]
    """

    items: list[SentenceEmbedding]
    dimensions: int = 0
    normalized: bool = False

    @property
    def vectors(self) -> list[list[float]]:
        return [r.vector for r in self.items]

    @property
    def total_tokens(self) -> int:
        """Tokens read for every input together (OpenAI's `usage.prompt_tokens`)."""
        return sum(r.tokens for r in self.items)

    def decisions(self) -> list[Any]:
        """Each vector rounded to 2 decimals, for parity checks of other copies of the model."""
        return [tuple(round(x, 2) for x in r.vector) for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: sentences, embeddings, dimensions. Medium adds tokens per input and normalized. High adds truncated."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "sentences": [r.text for r in self.items],
            "embeddings": self.vectors,
            "dimensions": self.dimensions,
        }
        if level.at_least(DetailLevel.Medium):
            out["tokens"] = [r.tokens for r in self.items]
            out["normalized"] = self.normalized
        if level.at_least(DetailLevel.High):
            out["truncated"] = [r.truncated for r in self.items]
        return out


# ---------------------------------------------------------------------------------------------------
# the predictor
# ---------------------------------------------------------------------------------------------------
EMBEDDING_OPTIONS = (
    Option("normalize", bool, None, "scale each vector to length 1 (default: as the model folder says)", True),
    Option("dimensions", int, None, "keep the first N dimensions (OpenAI's `dimensions`), normalised after the cut", 128),
)


def pool(states: Any, modes: Sequence[SentencePooling]) -> Any:
    """One float32 vector from one text's token vectors `(n_tokens, dim)` (no padding), several modes concatenated."""
    import numpy as np

    h = np.asarray(states, dtype=np.float64)
    n = len(h)
    parts = []
    for mode in modes:
        if mode is SentencePooling.CLS:
            parts.append(h[0])
        elif mode is SentencePooling.Max:
            parts.append(h.max(axis=0))
        elif mode is SentencePooling.Mean:
            parts.append(h.mean(axis=0))
        elif mode is SentencePooling.MeanSqrtLen:
            parts.append(h.sum(axis=0) / np.sqrt(n))
        elif mode is SentencePooling.WeightedMean:
            w = np.arange(1, n + 1, dtype=np.float64)
            parts.append((h * w[:, None]).sum(axis=0) / w.sum())
        else:
            parts.append(h[n - 1])
    return np.concatenate(parts).astype(np.float32)


def _unit(vectors: Any) -> Any:
    """Each row scaled to length 1 (a zero row stays zero), as `torch.nn.functional.normalize` does."""
    import numpy as np

    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class EmbeddingPredictor:
    """A transformers encoder with a pooling (and normalisation): `predict(texts)` gives one vector per text.

    Texts are encoded in length-sorted batches padded per batch; a text over the model's length is cut to it
    (counted, never an error). Build one with `load_embedder(folder)`.

    Example:
        >>> predictor, _ = load_embedder(folder)
        >>> predictor.predict(["Shares fell", "A late goal"], dimensions=128).to_dict()["embeddings"]
    """

    options: ClassVar[tuple[Option, ...]] = EMBEDDING_OPTIONS

    model: Any
    tokenizer: Any
    pooling: tuple[SentencePooling, ...] = (SentencePooling.Mean,)
    normalize: bool = False
    max_length: int | None = None  # sentence-transformers' max_seq_length; None: the model's own limit
    lowercase: bool = False  # sentence-transformers' do_lower_case

    def __post_init__(self) -> None:
        self.pooling = pooling_modes(self.pooling)

    @property
    def dimensions(self) -> int:
        """The length of a full vector: the model's hidden size per pooling mode."""
        return int(self.model.config.hidden_size) * len(self.pooling)

    @property
    def limit(self) -> int:
        """The most tokens of a text the model reads (longer texts are cut)."""
        return model_max_length(self.model, self.tokenizer, cap=self.max_length or 512)

    def predict(
        self, texts: Sequence[str], batch_size: int = 32, normalize: bool | None = None, dimensions: int | None = None
    ) -> SentenceEmbeddings:
        """Embed validated texts: encode (cut to `limit`), run in length-sorted batches, pool, cut, normalise."""
        import numpy as np

        texts = normalize_strings(texts)
        dims = self._check_dimensions(dimensions)
        unit = self.normalize if normalize is None else bool(normalize)
        # sentence-transformers strips each text (and lower-cases it for do_lower_case models) before tokenizing
        seen = [t.strip().lower() if self.lowercase else t.strip() for t in texts]
        enc = encode(self.tokenizer, seen, self.limit)
        states = forward_logits(self.model, self.tokenizer, enc, batch_size, output_keys=("last_hidden_state",))
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        tokens = [0] * len(texts)
        for k, sid in enumerate(enc.sample_ids):
            n = len(enc.features["input_ids"][k])
            vectors[sid] = pool(states[k][:n], self.pooling)
            tokens[sid] = n
        vectors = vectors[:, :dims]
        if unit:
            vectors = _unit(vectors)
        items = [
            SentenceEmbedding(t, [float(x) for x in v], n, w > 1)
            for t, v, n, w in zip(texts, vectors, tokens, enc.n_windows, strict=True)
        ]
        return SentenceEmbeddings(items, dims, unit)

    def _check_dimensions(self, dimensions: Any) -> int:
        full = self.dimensions
        if dimensions is None:
            return full
        if not is_count(dimensions) or dimensions > full:
            raise InvalidInputError(f"dimensions must be an integer from 1 to {full} (this model's vector size), "
                                    f"got {dimensions!r}.")
        return int(dimensions)


def pooling_modes(pooling: Any) -> tuple[SentencePooling, ...]:
    """`"mean"`, `"cls+max"`, a `SentencePooling` or a sequence of them, as modes (`InvalidChoiceError` naming the
    closest valid one for a misspelling)."""
    if isinstance(pooling, str):
        pooling = pooling.split("+")
    if not isinstance(pooling, Sequence) or not pooling:
        raise InvalidInputError(f"pooling must be one of {[p.value for p in SentencePooling]} or a list of them, "
                                f"got {pooling!r}.")
    modes = [SentencePooling(p) for p in pooling]
    return tuple(p for p in _POOLING_KEYS if p in modes)  # sentence-transformers' order


# ---------------------------------------------------------------------------------------------------
# embedding folders
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingConfig:
    """What an embedding folder says: where its transformer is, how it pools, whether it normalises, its length."""

    transformer: Path
    pooling: tuple[SentencePooling, ...]
    normalize: bool
    max_length: int | None = None
    lowercase: bool = False
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptModelError(f"{path} is missing or not readable JSON ({e}); save the folder again "
                                "(sentence-transformers' save() or adapt's save_embedder()).") from e


def _modules(folder: Path) -> list[dict[str, Any]] | None:
    """The entries of the folder's `modules.json` in order, or None when it has none."""
    path = folder / MODULES_FILE
    if not path.is_file():
        return None
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in data):
        raise CorruptModelError(f"{path} is not a list of modules with a 'type' each; save the folder again.")
    return sorted(data, key=lambda m: m.get("idx", 0) if isinstance(m.get("idx"), int) else 0)


def _kind(entry: dict[str, Any]) -> str:
    """`Pooling` for `sentence_transformers.models.Pooling` (a module's class name)."""
    return str(entry["type"]).rsplit(".", 1)[-1]


def _task(folder: Path) -> str | None:
    from .modelio import read_manifest

    task = read_manifest(folder).get("task")
    return task if isinstance(task, str) else None


def is_embedding_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder whose `modules.json` names a `Pooling` module, or whose `adapt.json` says task "embeddings".

    A folder adapt saved for another task is not one; unreadable files give False (loading it then says why).
    """
    if not isinstance(path, (str, os.PathLike)):
        return False
    folder = Path(path).expanduser()
    try:
        if not folder.is_dir():
            return False
        task = _task(folder)
        if task is not None and task != TASK:
            return False
        modules = _modules(folder)
    except (CorruptModelError, OSError):
        return False
    if modules is not None:
        return any(_kind(m) == "Pooling" for m in modules)
    return task == TASK


def _subfolder(folder: Path, entry: dict[str, Any]) -> Path:
    """The module's folder, refused unless it stays inside `folder`."""
    sub = (folder / str(entry.get("path") or "")).resolve()
    if sub != folder.resolve() and folder.resolve() not in sub.parents:
        raise CorruptModelError(f"{folder / MODULES_FILE}: module path {entry.get('path')!r} points outside the folder.")
    return sub


def _pooling_of(config: Any, where: Path) -> tuple[SentencePooling, ...]:
    if not isinstance(config, dict):
        raise CorruptModelError(f"{where} is not a JSON object of pooling settings.")
    known = set(_POOLING_KEYS.values())
    others = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v is True and k not in known)
    if others:
        raise CorruptModelError(f"{where} turns on {others}, which adapt does not run; it runs {sorted(known)}.")
    modes = tuple(p for p, key in _POOLING_KEYS.items() if config.get(key) is True)
    if not modes:
        raise CorruptModelError(f"{where} turns on no pooling mode (one of {sorted(known)}).")
    return modes


def _from_modules(folder: Path, modules: list[dict[str, Any]]) -> tuple[Path, tuple[SentencePooling, ...], bool]:
    """(the transformer's folder, the pooling, normalize?) from `modules.json`."""
    unknown = [str(m["type"]) for m in modules if _kind(m) not in _KNOWN_MODULES]
    if unknown:
        raise CorruptModelError(
            f"{folder / MODULES_FILE} names {unknown}, which adapt does not run; it runs the modules "
            f"{', '.join(_ST_MODULES + k for k in _KNOWN_MODULES)}. Use sentence-transformers for this model."
        )
    by_kind = {_kind(m): m for m in modules}
    transformer = _subfolder(folder, by_kind["Transformer"]) if "Transformer" in by_kind else folder.resolve()
    pooling_dir = _subfolder(folder, by_kind["Pooling"])
    return transformer, _pooling_of(_read_json(pooling_dir / "config.json"), pooling_dir / "config.json"), "Normalize" in by_kind


def read_embedding_config(path: str | os.PathLike[str]) -> EmbeddingConfig:
    """Read an embedding folder's settings (no weights); `WrongTaskError` for a folder that is not one."""
    from .modelio import read_manifest

    folder = Path(path).expanduser()
    manifest = read_manifest(folder)
    if manifest and manifest.get("task") != TASK:
        raise WrongTaskError(f"{str(path)!r} holds a {manifest.get('task')!r} model, not an embedding model; make one "
                             "from it with save_embedder(model, folder).")
    modules = _modules(folder)
    if modules is not None:
        transformer, pooling, normalize = _from_modules(folder, modules)
    elif manifest:
        try:
            pooling = pooling_modes(manifest.get("pooling", "mean"))
        except InvalidInputError as e:
            raise CorruptModelError(f"{folder / 'adapt.json'}: {e}") from e
        transformer, normalize = folder.resolve(), bool(manifest.get("normalize", False))
    else:
        raise WrongTaskError(f"{str(path)!r} is not an embedding folder (no {MODULES_FILE} naming a Pooling module); "
                             "make one with save_embedder(model_name_or_path, folder, pooling='mean').")
    st = _read_json(transformer / ST_CONFIG) if (transformer / ST_CONFIG).is_file() else {}
    max_length = st.get("max_seq_length") if isinstance(st, dict) else None
    max_length = max_length if is_count(max_length, 2) else manifest.get("max_length")
    lowercase = bool(st.get("do_lower_case", False)) if isinstance(st, dict) else False
    return EmbeddingConfig(transformer, pooling, normalize, max_length, lowercase, manifest)


def _load_model(location: str, device: Any) -> tuple[Any, Any]:
    """(AutoModel in eval mode on `device`, owning its weights; its fast tokenizer), errors as adapt's."""
    from transformers import AutoModel

    from .modelio import load_tokenizer, own_weights, pad_alike
    from .utils import default_device

    try:
        model = AutoModel.from_pretrained(location, trust_remote_code=False)
    except OSError as e:
        raise ModelNotFoundError(f"Could not load a model from {location!r}: not a local folder, and the hub could "
                                 f"not provide it ({e}).") from e
    except Exception as e:  # safetensors, torch and transformers raise many kinds for bad files
        raise CorruptModelError(f"Could not load the weights in {location!r} ({type(e).__name__}: {e}); the files are "
                                "damaged or do not fit config.json.") from e
    own_weights(model)
    model.to(default_device(device)).eval()
    return model, pad_alike(model, load_tokenizer(location))


def load_embedder(path: str | os.PathLike[str], device: str | None = None) -> tuple[EmbeddingPredictor, dict[str, Any]]:
    """(the predictor of an embedding folder, its description for `/metadata`: task, base_model, pooling, normalize,
    dimensions, max_length). The folder is checked first (adapt.json checksums included)."""
    from .modelio import base_model_id, resolve_model_source

    folder = Path(path).expanduser()
    # a missing path: recover a crashed save, else say what is wrong
    if not folder.is_dir() and resolve_model_source(path).kind != "hf_dir":
        raise ModelNotFoundError(f"{str(path)!r} is not a local embedding folder; make one with "
                                 f"save_embedder({str(path)!r}, folder).")
    config = read_embedding_config(folder)
    resolve_model_source(config.transformer)  # config, weights and tokenizer present; checksums verified
    model, tokenizer = _load_model(str(config.transformer), device)
    predictor = EmbeddingPredictor(model, tokenizer, config.pooling, config.normalize, config.max_length, config.lowercase)
    base = config.manifest.get("base_model") or base_model_id(str(folder.resolve()))[0]
    manifest = {
        "task": TASK,
        "base_model": base,
        "pooling": "+".join(p.value for p in predictor.pooling),
        "normalize": predictor.normalize,
        "dimensions": predictor.dimensions,
        "max_length": predictor.limit,
    }
    logger.info("loaded embedding model %s (%s pooling, %d dimensions)", folder.name, manifest["pooling"], predictor.dimensions)
    return predictor, manifest


# ---------------------------------------------------------------------------------------------------
# making an embedding folder
# ---------------------------------------------------------------------------------------------------
def _write_modules(folder: Path, modes: tuple[SentencePooling, ...], normalize: bool, hidden: int, max_length: int) -> None:
    """sentence-transformers' files beside the transformer: modules.json, 1_Pooling/, 2_Normalize/ and its config."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": _ST_MODULES + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_MODULES + "Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": _ST_MODULES + "Normalize"})
        (folder / "2_Normalize").mkdir()
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": hidden, **{key: p in modes for p, key in _POOLING_KEYS.items()}}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")
    (folder / MODULES_FILE).write_text(json.dumps(modules, indent=2), encoding="utf-8")
    st = {"max_seq_length": max_length, "do_lower_case": False}
    (folder / ST_CONFIG).write_text(json.dumps(st, indent=2), encoding="utf-8")


def _same_folder(a: Any, b: Path) -> bool:
    p = Path(str(a)).expanduser()
    return p.exists() and b.expanduser().exists() and p.resolve() == b.expanduser().resolve()


def save_embedder(
    model_name_or_path: str | os.PathLike[str],
    path: str | os.PathLike[str],
    pooling: SentencePooling | str | Sequence[str] = "mean",
    normalize: bool = True,
    max_length: int | None = None,
) -> Path:
    """Write an embedding folder from any transformers model (a Hub id or a folder, an adapt task folder too: its
    encoder is kept, its head dropped): the transformer, `modules.json`, `1_Pooling/config.json`, `2_Normalize` when
    `normalize`, `sentence_bert_config.json` and a checksummed `adapt.json`, written atomically. sentence-transformers
    loads it as well. Returns the folder.

    Example:
        >>> save_embedder("sentence-transformers/all-MiniLM-L6-v2", "minilm", pooling="mean", normalize=True)
    """
    from .modelio import base_model_id, resolve_model_source, save_hf_folder

    modes = pooling_modes(pooling)  # checked before anything loads
    if not isinstance(normalize, bool):
        raise InvalidInputError(f"normalize must be True or False, got {normalize!r}.")
    if max_length is not None and not is_count(max_length, 2):
        raise InvalidInputError(f"max_length must be an integer >= 2 or None, got {max_length!r}.")
    target = Path(path)
    if _same_folder(model_name_or_path, target):
        raise TargetExistsError(f"Writing to {str(target)!r} would replace the model being read; choose another folder.")
    source = resolve_model_source(model_name_or_path)
    if source.kind == "flair":
        raise InvalidInputError(f"{str(model_name_or_path)!r} is a flair model file; pass a transformers model or folder.")
    model, tokenizer = _load_model(source.location, "cpu")
    hidden = int(model.config.hidden_size)
    limit = model_max_length(model, tokenizer, cap=max_length or 512)
    manifest = {
        "task": TASK,
        "base_model": base_model_id(str(model_name_or_path))[0],
        "pooling": "+".join(p.value for p in modes),
        "normalize": normalize,
        "dimensions": hidden * len(modes),
        "max_length": limit,
    }
    return save_hf_folder(model, tokenizer, target, manifest,
                          after_model=lambda tmp: _write_modules(tmp, modes, normalize, hidden, limit))


# ---------------------------------------------------------------------------------------------------
# the Easy door
# ---------------------------------------------------------------------------------------------------
class EasySentenceEmbeddings:
    """One vector per text from an embedding folder (sentence-transformers style, or written by `save_embedder`).

    `embed` returns the JSON the server's `POST /predict` gives for the folder (and `/v1/embeddings` holds the
    same vectors). Each folder loads once per instance.

    Example:
        >>> EasySentenceEmbeddings().embed(["Shares fell", "A late goal"], model_path)["embeddings"]  # 2 x 384 floats
    """

    save_embedder = staticmethod(save_embedder)

    def __init__(self, device: Any = None) -> None:
        self.device = device
        self._cache: dict[str, EmbeddingPredictor] = {}
        self._lock = threading.Lock()

    def get_model(self, model_name_or_path: str | os.PathLike[str]) -> EmbeddingPredictor:
        """The cached predictor of this folder, loaded on first use."""
        key = str(Path(model_name_or_path).expanduser().absolute()) if isinstance(model_name_or_path, (str, os.PathLike)) \
            else repr(model_name_or_path)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load_embedder(model_name_or_path, self.device)[0]
            return self._cache[key]

    def embed(
        self,
        text: Any,
        model_name_or_path: str | os.PathLike[str],
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
        **options: Any,
    ) -> dict[str, Any]:
        """`{"sentences", "embeddings": [[float]], "dimensions"}` for one text or a list (lists of length 1 for one);
        options: `normalize`, `dimensions`. `batch_size=` is accepted for `mini_batch_size`."""
        mini_batch_size = batch_size_option(mini_batch_size, 32, options, "mini_batch_size")
        level = DetailLevel(detail_level)  # checked before any model loads, as the options are
        check_options(options, EmbeddingPredictor.options, "EasySentenceEmbeddings.embed")
        return predict_json(self.get_model(model_name_or_path), text, TEXT, mini_batch_size, level, options)

    def release(self) -> None:
        """Drop every loaded model."""
        with self._lock:
            self._cache.clear()
