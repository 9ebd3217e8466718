"""Word, stacked and document embeddings from any transformers model, on flair (as AdaptNLP offered them).

`EasyWordEmbeddings`, `EasyStackedEmbeddings` and `EasyDocumentEmbeddings` return dicts whose AdaptNLP keys
(`sentence_embeddings`, `token_embeddings`) hold torch tensors, as AdaptNLP's did, beside adapt's JSON keys
(`sentences`, `tokens`, `embeddings`: lists of floats); `return_tensors="np"` gives NumPy arrays throughout, and
`EmbeddingResult.to_dict()` is the JSON-safe view. Words come from flair's tokenizer; each word's vector is its
first sub-token's last-layer state, and texts longer than the model maximum are embedded in overlapping windows.
flair places models on `flair.device` (CUDA when available). Importing this module does not import flair.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..enums import ChoiceEnum, DetailLevel
from ..errors import InvalidChoiceError, InvalidInputError, MissingDependencyError, ModelNotFoundError, install_hint
from ..inference import normalize_strings

__all__ = [
    "EasyDocumentEmbeddings",
    "EasyStackedEmbeddings",
    "EasyWordEmbeddings",
    "EmbeddingResult",
    "EmbeddingResults",
    "Pooling",
]

RETURN_TENSORS = (None, "np")


class Pooling(ChoiceEnum):
    """How `EasyDocumentEmbeddings` turns a text into one vector.

    - `mean`, `max`, `min`: flair's `DocumentPoolEmbeddings` over the word vectors
    - `cls`: flair's `TransformerDocumentEmbeddings`, the first token's (`[CLS]`) last-layer state
    """

    Mean = "mean"
    Max = "max"
    Min = "min"
    CLS = "cls"


@dataclass
class EmbeddingResult:
    """Vectors for a list of texts: per word (`tokens` set, one `(n_words, dim)` array per text) or per document.

    AdaptNLP's names are properties holding CPU float32 torch tensors, as AdaptNLP's did: `inputs`,
    `sentence_embeddings` (one `(n_texts, dim)` tensor; `[]` for word vectors) and `token_embeddings` (per text, an
    `(n_words, dim)` tensor sharing memory with `vectors`; an empty list per text for document vectors).
    `embed_text(..., detail_level=None)` returns this object; `to_dict(level)` is its JSON-safe view.
    """

    sentences: list[str]
    vectors: list[Any]
    tokens: list[list[str]] | None = None

    @property
    def inputs(self) -> list[str]:
        return list(self.sentences)

    @property
    def sentence_embeddings(self) -> Any:
        import numpy as np
        import torch

        return [] if self.tokens is not None else torch.from_numpy(np.stack(self.vectors))

    @property
    def token_embeddings(self) -> list[Any]:
        import torch

        return [torch.from_numpy(v) for v in self.vectors] if self.tokens is not None else [[] for _ in self.sentences]

    def to_dict(
        self, detail_level: DetailLevel | str | None = DetailLevel.Low, return_tensors: str | None = None
    ) -> dict[str, Any]:
        """The JSON-safe view: `{"sentences", ["tokens",] "embeddings"}` with nested lists of floats (NumPy arrays
        for `"np"`), and AdaptNLP's `inputs`, `sentence_embeddings`, `token_embeddings` (the same lists as
        `embeddings`, not copies; the Easy methods put the torch tensors there instead); Medium adds
        `tokenized_inputs`."""
        import numpy as np

        _check_return_tensors(return_tensors)
        level = DetailLevel(detail_level or DetailLevel.Low)
        out: dict[str, Any] = {"sentences": list(self.sentences)}
        if self.tokens is not None:
            out["tokens"] = self.tokens
            out["embeddings"] = list(self.vectors) if return_tensors == "np" else [v.tolist() for v in self.vectors]
        else:
            stacked = np.stack(self.vectors)
            out["embeddings"] = stacked if return_tensors == "np" else stacked.tolist()
        vectors = out["embeddings"]
        out["inputs"] = list(self.sentences)
        out["sentence_embeddings"] = [] if self.tokens is not None else vectors
        out["token_embeddings"] = vectors if self.tokens is not None else [[] for _ in self.sentences]
        if level.at_least(DetailLevel.Medium):
            out["tokenized_inputs"] = [" ".join(t) for t in self.tokens] if self.tokens is not None else list(self.sentences)
        return out


EmbeddingResults = EmbeddingResult  # adapt's earlier name


def _answer(result: EmbeddingResult, detail_level: DetailLevel | str | None, return_tensors: str | None) -> Any:
    """What every Easy embedding method returns. `detail_level=None`: the result object (AdaptNLP's); else its
    `to_dict` view, whose AdaptNLP keys then hold the result's torch tensors (as AdaptNLP's did) unless
    `return_tensors="np"` asks for NumPy throughout. Only `to_dict` is JSON-safe."""
    _check_return_tensors(return_tensors)
    if detail_level is None:
        return result
    out = result.to_dict(detail_level, return_tensors)
    if return_tensors is None:
        out["sentence_embeddings"], out["token_embeddings"] = result.sentence_embeddings, result.token_embeddings
    return out


def _check_return_tensors(value: Any) -> None:
    if value not in RETURN_TENSORS:
        raise InvalidChoiceError(f"return_tensors must be one of {list(RETURN_TENSORS)}, got {value!r}.")


def _names(models: Sequence[Any]) -> list[str]:
    if not models:
        raise InvalidInputError("Pass at least one model name or path.")
    out = []
    for m in models:
        if not isinstance(m, (str, os.PathLike)) or not str(m).strip():
            raise ModelNotFoundError(f"model names must be non-empty strings or paths, got {m!r}.")
        out.append(str(m))
    return out


def _transformer_embeddings(model_name_or_path: str, index: int, document: bool = False) -> Any:
    """A flair transformer embedding; local paths are checked first so a typo gives a clear error, not a hub lookup."""
    from ..modelio import resolve_model_source

    src = resolve_model_source(model_name_or_path)
    if src.kind == "flair":
        raise InvalidInputError(f"{model_name_or_path!r} is a flair model file; pass a transformers model name or folder.")
    try:
        from flair.embeddings import TransformerDocumentEmbeddings, TransformerWordEmbeddings
    except ImportError as e:
        raise MissingDependencyError(f"Embeddings need flair: {install_hint('flair')}.") from e
    # zero-padded index first: flair concatenates stacked vectors in name order, which is then the given order
    name = f"{index:03d}-{model_name_or_path}"
    try:
        if document:
            return TransformerDocumentEmbeddings(
                src.location, layers="-1", cls_pooling="cls", allow_long_sentences=True, name=name, fine_tune=False
            )
        return TransformerWordEmbeddings(
            src.location, layers="-1", subtoken_pooling="first", allow_long_sentences=True, name=name, fine_tune=False
        )
    except OSError as e:
        raise ModelNotFoundError(f"Could not load {model_name_or_path!r} (offline, or not a transformers model): {e}") from e


def _embed(embedding: Any, texts: Sequence[str], batch_size: int, words: bool) -> tuple[list[list[str]], list[Any]]:
    """Embed texts in length-sorted mini-batches; returns each text's words and its vectors as float32 NumPy."""
    import numpy as np
    import torch
    from flair.data import Sentence

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"mini_batch_size must be a positive integer, got {batch_size!r}.")
    sentences = [Sentence(t) for t in texts]
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]), reverse=True)
    vectors: list[Any] = [None] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [sentences[i] for i in idx]
            embedding.embed(batch)
            for i, s in zip(idx, batch, strict=True):
                if words:
                    vectors[i] = np.stack([t.get_embedding().float().cpu().numpy() for t in s])
                else:
                    vectors[i] = s.get_embedding().float().cpu().numpy()
                s.clear_embeddings()
    return [[t.text for t in s] for s in sentences], vectors


class _WordEmbedder:
    """Shared by the word and stacked modules: cached flair word embeddings, stacked when there are several."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], Any] = {}

    def release(self) -> None:
        """Drop every loaded model."""
        self._cache.clear()

    def _embedding(self, names: Sequence[str]) -> Any:
        key = tuple(names)
        if key not in self._cache:
            parts = [_transformer_embeddings(n, i) for i, n in enumerate(names)]
            if len(parts) == 1:
                self._cache[key] = parts[0]
            else:
                from flair.embeddings import StackedEmbeddings

                self._cache[key] = StackedEmbeddings(parts)
        return self._cache[key]

    def _embed_words(
        self, text: Any, names: Sequence[str], batch_size: int, detail_level: DetailLevel | str | None, return_tensors: str | None
    ) -> Any:
        _check_return_tensors(return_tensors)
        texts = normalize_strings(text)
        tokens, vectors = _embed(self._embedding(names), texts, batch_size, words=True)
        return _answer(EmbeddingResult(list(texts), vectors, tokens), detail_level, return_tensors)


class EasyWordEmbeddings(_WordEmbedder):
    """One vector per word from any transformers model (hub name or folder), via flair's `TransformerWordEmbeddings`.

    Example:
        >>> EasyWordEmbeddings().embed_text("Shares fell sharply", model_path)["embeddings"][0]  # 3 x 384 floats
    """

    def embed_text(
        self,
        text: Any,
        model_name_or_path: Any,
        mini_batch_size: int = 32,
        return_tensors: str | None = None,
        detail_level: DetailLevel | str | None = DetailLevel.Low,
    ) -> Any:
        """`{"sentences", "tokens": [[word, ...]], "embeddings": [[[float]]]}` (lists of length 1 for one string),
        plus AdaptNLP's `inputs`, `sentence_embeddings` (`[]`) and `token_embeddings` (one `(n_words, dim)` torch
        tensor per text)."""
        return self._embed_words(text, _names([model_name_or_path]), mini_batch_size, detail_level, return_tensors)

    def embed_all(
        self,
        text: Any,
        model_names_or_paths: Sequence[Any] | None = None,
        detail_level: DetailLevel | str | None = DetailLevel.Low,
        mini_batch_size: int = 32,
        return_tensors: str | None = None,
    ) -> Any:
        """Word vectors of several models concatenated (as `EasyStackedEmbeddings`): those named, else every model
        `embed_text` has loaded."""
        names = list(model_names_or_paths or dict.fromkeys(key[0] for key in self._cache if len(key) == 1))
        if not names:
            raise InvalidInputError("No models loaded yet; pass model_names_or_paths=[...] or call embed_text first.")
        return self._embed_words(text, _names(names), mini_batch_size, detail_level, return_tensors)


class EasyStackedEmbeddings(_WordEmbedder):
    """Word vectors of several models concatenated (flair's `StackedEmbeddings`), in the order given.

    Example:
        >>> EasyStackedEmbeddings(model_a, model_b).embed_text("Shares fell")  # dim = dim_a + dim_b per word
    """

    def __init__(self, *model_names_or_paths: Any) -> None:
        super().__init__()
        self.models = _names(model_names_or_paths)

    def embed_text(
        self,
        text: Any,
        mini_batch_size: int = 32,
        return_tensors: str | None = None,
        detail_level: DetailLevel | str | None = DetailLevel.Low,
    ) -> Any:
        """Same shape as `EasyWordEmbeddings.embed_text`, with concatenated vectors."""
        return self._embed_words(text, self.models, mini_batch_size, detail_level, return_tensors)


METHODS = ("rnn", "pool")
# AdaptNLP's document settings; its pool default `fine_tune_mode="linear"` put an untrained random layer on top
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "pool_configs": {"fine_tune_mode": "none", "pooling": "mean"},
    "rnn_configs": {
        "hidden_size": 512,
        "rnn_layers": 1,
        "reproject_words": True,
        "reproject_words_dimension": 256,
        "bidirectional": False,
        "dropout": 0.5,
        "word_dropout": 0.0,
        "locked_dropout": 0.0,
        "rnn_type": "GRU",
        "fine_tune": True,
    },
}


def _document_settings(methods: Sequence[str], configs: dict[str, dict[str, Any]] | None) -> tuple[list[str], dict[str, Any]]:
    """The checked `methods` and `configs` (each given config updates the defaults rather than replacing them)."""
    from ..errors import unknown_name

    methods = [methods] if isinstance(methods, str) else list(methods)
    for m in methods:
        if m not in METHODS:
            raise InvalidChoiceError(unknown_name("method", str(m), METHODS, "EasyDocumentEmbeddings"))
    merged = {k: dict(v) for k, v in DEFAULT_CONFIGS.items()}
    for key, value in (configs or {}).items():
        if key not in merged:
            raise InvalidChoiceError(unknown_name("configs key", str(key), list(merged), "EasyDocumentEmbeddings"))
        merged[key].update(value)
    return methods, merged


class EasyDocumentEmbeddings:
    """One vector per text from one or more transformers models, pooled `mean`/`max`/`min` over words or `cls`.

    AdaptNLP's `methods=["rnn", "pool"]` and `configs={"pool_configs": {...}, "rnn_configs": {...}}` give
    `embed_pool` (flair's `DocumentPoolEmbeddings`) and `embed_rnn` (flair's `DocumentRNNEmbeddings`, an untrained
    RNN over the word vectors, as AdaptNLP had it: train it before its vectors mean anything).

    Example:
        >>> EasyDocumentEmbeddings(model_path).embed_text(["Shares fell", "A late goal"], pooling="mean")
    """

    def __init__(
        self, *model_names_or_paths: Any, methods: Sequence[str] = METHODS, configs: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.models = _names(model_names_or_paths)
        self.methods, self.configs = _document_settings(methods, configs)
        self.pool_configs, self.rnn_configs = self.configs["pool_configs"], self.configs["rnn_configs"]
        self._docs: dict[str, Any] = {}
        self._words: list[Any] | None = None  # one word embedding per model, shared by mean, max, min, pool and rnn

    def _word_embeddings(self) -> list[Any]:
        if self._words is None:
            self._words = [_transformer_embeddings(n, i) for i, n in enumerate(self.models)]
        return self._words

    def _embedding(self, pooling: Pooling) -> Any:
        if pooling.value not in self._docs:
            if pooling is Pooling.CLS:
                parts = [_transformer_embeddings(n, i, document=True) for i, n in enumerate(self.models)]
                self._docs[pooling.value] = parts
            else:
                from flair.embeddings import DocumentPoolEmbeddings

                pool = DocumentPoolEmbeddings(self._word_embeddings(), fine_tune_mode="none", pooling=pooling.value)
                self._docs[pooling.value] = [pool]
        return self._docs[pooling.value]

    def _method(self, method: str) -> Any:
        if method not in self.methods:
            raise InvalidInputError(f"embed_{method} needs {method!r} in methods= (given: {self.methods}).")
        if method not in self._docs:
            from flair.embeddings import DocumentPoolEmbeddings, DocumentRNNEmbeddings

            doc: Any
            if method == "pool":
                doc = DocumentPoolEmbeddings(self._word_embeddings(), **self.pool_configs)
            else:
                doc = DocumentRNNEmbeddings(self._word_embeddings(), **self.rnn_configs)
            self._docs[method] = [doc.eval()]  # no dropout at inference
        return self._docs[method]

    def release(self) -> None:
        """Drop every loaded model."""
        self._docs.clear()
        self._words = None

    def _document(
        self, embeddings: list[Any], text: Any, batch_size: int, level: DetailLevel | str | None, return_tensors: str | None
    ) -> Any:
        import numpy as np

        _check_return_tensors(return_tensors)
        texts = normalize_strings(text)
        parts = [_embed(e, texts, batch_size, words=False)[1] for e in embeddings]
        vectors = [np.concatenate(v) for v in zip(*parts, strict=True)]
        return _answer(EmbeddingResult(list(texts), vectors), level, return_tensors)

    def embed_text(
        self,
        text: Any,
        pooling: Pooling | str = Pooling.Mean,
        mini_batch_size: int = 32,
        return_tensors: str | None = None,
        detail_level: DetailLevel | str | None = DetailLevel.Low,
    ) -> Any:
        """`{"sentences", "embeddings": [[float]]}` (a `(n_texts, dim)` array for `return_tensors="np"`), plus
        AdaptNLP's keys: `sentence_embeddings`, the same vectors as one `(n_texts, dim)` torch tensor."""
        return self._document(self._embedding(Pooling(pooling)), text, mini_batch_size, detail_level, return_tensors)

    def embed_pool(
        self, text: Any, detail_level: DetailLevel | str | None = DetailLevel.Low, mini_batch_size: int = 32,
        return_tensors: str | None = None,
    ) -> Any:
        """AdaptNLP's pooled document vectors, with `configs["pool_configs"]` (mean pooling by default)."""
        return self._document(self._method("pool"), text, mini_batch_size, detail_level, return_tensors)

    def embed_rnn(
        self, text: Any, detail_level: DetailLevel | str | None = DetailLevel.Low, mini_batch_size: int = 32,
        return_tensors: str | None = None,
    ) -> Any:
        """AdaptNLP's RNN document vectors (`configs["rnn_configs"]`; the RNN is untrained, as it was there)."""
        return self._document(self._method("rnn"), text, mini_batch_size, detail_level, return_tensors)
