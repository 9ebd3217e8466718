"""Language modelling: causal and masked LM fine-tuning, text generation and fill-mask.

`LanguageModelDatasets` concatenates texts and cuts them into blocks; `LanguageModelTuner` fine-tunes with
perplexity as the metric; `HFTextGenerator` (batched `model.generate` with left padding) and `HFFillMask` are
the prediction paths shared by the tuner's `predict`, `EasyTextGenerator` and `EasyFillMask`.
Importing this module is cheap: datasets, transformers, torch and fastai are imported when used.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any, ClassVar

from ..data import LoadOptions, TaskDatasets, check_columns, check_rows, row_name
from ..easy import EasyBase, ModelRef
from ..enums import ChoiceEnum, DetailLevel, LongText
from ..errors import EmptyDatasetError, InvalidChoiceError, InvalidInputError, WrongTaskError, is_count
from ..generation import HFTextGenerator, check_num_tokens, position_limit
from ..inference import TEXT, Field, encode, forward_logits, model_max_length, softmax
from ..options import Option
from ..results import Results
from ..tuner import Tuner
from .base import TaskSpec

logger = logging.getLogger(__name__)

TASK = "language_modeling"
IGNORE = -100
DEFAULT_BLOCK_SIZE = 128
CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")
MASKED_HEADS = ("ForMaskedLM",)

__all__ = [
    "TASKS",
    "EasyFillMask",
    "EasyTextGenerator",
    "FillMaskResults",
    "HFFillMask",
    "LMType",
    "LanguageModelDatasets",
    "LanguageModelTuner",
    "causal_lm_loss",
    "masked_lm_loss",
    "token_cross_entropy",
]


# ---------------------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------------------
def check_lm_architecture(config: Any, masked_lm: bool, name: str) -> None:
    """Raise `WrongTaskError` unless transformers has a causal (or masked) LM class for this model type."""
    from transformers.models.auto import modeling_auto

    mapping = modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES if masked_lm else modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    kind = config.model_type
    if kind not in mapping:
        if masked_lm:
            raise WrongTaskError(
                f"{name!r} is a {kind!r} model, which has no AutoModelForMaskedLM class, so it cannot be trained as a "
                "masked LM. Use masked_lm=False for causal (next-token) training, or a BERT-like model for masked LM."
            )
        raise WrongTaskError(
            f"{name!r} is a {kind!r} model, which has no AutoModelForCausalLM class. Use masked_lm=True for an "
            "encoder such as BERT, or a decoder model such as GPT-2 for causal LM."
        )


def _load_config(name: str, auto_kwargs: dict[str, Any] | None = None) -> Any:
    """The model config of `name`, or None when `name` only names a tokenizer."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, **{"trust_remote_code": False, **dict(auto_kwargs or {})})
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
def _tokenize_blocks(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: Any,
    tokenize_kwargs: dict[str, Any],
    keys: list[str],
    text_col: str,
    block_size: int,
    eos_id: int | None,
    split: str,
) -> dict[str, list[list[int]]]:
    """Tokenize the non-empty texts of a batch, join them (with EOS between documents when set) and cut blocks.

    Every token is kept: the last block of each map batch may be shorter (the collator pads it); only a lone
    trailing token, which teaches nothing, is dropped.
    """
    texts = []
    for i, t in zip(indices, batch[text_col], strict=True):
        if not isinstance(t, str):
            raise InvalidInputError(
                f"{row_name(split, i)} has a {type(t).__name__} in {text_col!r}, not text: {t!r:.60}."
            )
        if t.strip():
            texts.append(t)
    if not texts:
        return {k: [] for k in keys}
    enc = tokenizer(texts, verbose=False, **tokenize_kwargs)
    joined: dict[str, list[int]] = {}
    for k in keys:
        rows = enc[k]
        if eos_id is not None:
            extra = eos_id if k == "input_ids" else 1 if k in ("attention_mask", "special_tokens_mask") else 0
            rows = [[*r, extra] for r in rows]
        joined[k] = list(chain.from_iterable(rows))
    total = len(joined["input_ids"])
    starts = [s for s in range(0, total, block_size) if total - s >= 2]
    return {k: [v[s : s + block_size] for s in starts] for k, v in joined.items()}


def _mask_once(batch: dict[str, list[Any]], indices: list[int], collator: Any, seed: int) -> dict[str, list[list[int]]]:
    """Mask validation blocks once, with a fixed seed, so validation loss compares like with like across epochs.

    Each block is seeded from `(seed, its index)`, so blocks of equal length get independent masks.
    """
    import torch

    ids_out, labels_out = [], []
    with torch.random.fork_rng(devices=[]):
        for i, ids, special in zip(indices, batch["input_ids"], batch["special_tokens_mask"], strict=True):
            torch.manual_seed(seed * 1_000_003 + i)
            masked, labels = collator.torch_mask_tokens(torch.tensor([ids]), special_tokens_mask=torch.tensor([special]))
            ids_out.append(masked[0].tolist())
            labels_out.append(labels[0].tolist())
    return {"input_ids": ids_out, "labels": labels_out}


class LanguageModelCollate:
    """Pads each batch and adds labels.

    - Masked mode, training rows: transformers' `DataCollatorForLanguageModeling` (fresh random masks per batch).
    - Causal mode: labels are the inputs, -100 on padding. Padding is found from the attention mask, not the
      token id, so a tokenizer that pads with EOS (GPT-2) still learns to predict EOS between documents.
    - Rows that already carry labels (the pre-masked validation split) are only padded, labels with -100.
    """

    def __init__(self, tokenizer: Any, masked_lm: bool, mlm_probability: float) -> None:
        from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification, DataCollatorWithPadding

        self.masked_lm = masked_lm
        self.lm = DataCollatorForLanguageModeling(tokenizer, mlm=masked_lm, mlm_probability=mlm_probability)
        self.fixed = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)
        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        if "labels" in rows[0]:
            return self.fixed(rows)
        if self.masked_lm:
            return self.lm(rows)
        batch = self.pad(rows)
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE)
        return batch


class LanguageModelDatasets(TaskDatasets):
    """Texts joined and cut into blocks of `block_size` tokens, for causal or masked (`masked_lm=True`) LM training.

    `block_size` defaults to the smaller of the model maximum and 128; a larger one is clamped (with a warning).
    Masked mode uses transformers' `DataCollatorForLanguageModeling` with `mlm_probability`: training blocks get
    new masks every batch, validation blocks are masked once (seeded) so validation loss is comparable.

    Example:
        >>> dsets = LanguageModelDatasets.from_dfs(df, "text", "gpt2", block_size=128)
        >>> dls = dsets.dataloaders(batch_size=16)
        >>> dls.show_batch()
    """

    copy_labels = True  # a row's `labels` are its `input_ids` (the collator shifts or masks them per batch)

    def __init__(
        self,
        train_dset: Any,
        valid_dset: Any = None,
        tokenizer_name: str | None = None,
        text_col: str = "text",
        block_size: int | None = None,
        masked_lm: bool = False,
        mlm_probability: float = 0.15,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        seed: int | None = 42,
        **shared: Any,
    ) -> None:
        """`shared`: `TaskDatasets` arguments (`tokenizer`, `num_proc`)."""
        if not isinstance(mlm_probability, (int, float)) or not 0 < mlm_probability < 1:
            raise InvalidInputError(f"mlm_probability must be a number between 0 and 1, got {mlm_probability!r}.")
        # no truncation: the blocks are the length limit
        kw = {"truncation": False, "max_length": None, **dict(tokenize_kwargs or {})}
        super().__init__(
            train_dset, valid_dset, tokenizer_name, tokenize=False, tokenize_kwargs=kw, auto_kwargs=auto_kwargs, **shared
        )
        splits = (("train", self.train), ("validation", self.valid))
        for split, d in splits:
            check_columns(d.column_names, [text_col], f"{split} split")
        check_rows(splits, [text_col], lambda t: None if isinstance(t, str) else
                   f"a {type(t).__name__} in {text_col!r}, not text: {t!r:.60}")
        self.text_col, self.masked_lm, self.mlm_probability = text_col, bool(masked_lm), float(mlm_probability)
        config = _load_config(self.tokenizer_name, auto_kwargs) if isinstance(self.tokenizer_name, str) else None
        self._check_tokenizer(config)
        self.block_size = self._resolve_block_size(block_size, config)
        self.collate = LanguageModelCollate(self.tokenizer, self.masked_lm, self.mlm_probability)
        self.train = self._blocks(self.train, "train")
        self.valid = self._blocks(self.valid, "validation")
        if self.masked_lm:
            fn = partial(_mask_once, collator=self.collate.lm, seed=0 if seed is None else seed)
            self.valid = self.valid.map(
                fn, batched=True, with_indices=True, remove_columns=["special_tokens_mask"], desc="Masking validation"
            )
        logger.info("%d training and %d validation blocks of up to %d tokens", len(self.train), len(self.valid), self.block_size)
        self._publish()

    # -- set-up ---------------------------------------------------------------------------------------------
    def _check_tokenizer(self, config: Any) -> None:
        tok = self.tokenizer
        name = self.tokenizer_name
        if self.masked_lm:
            if config is not None:
                check_lm_architecture(config, True, str(name))
            if tok.mask_token is None:
                raise WrongTaskError(f"The tokenizer of {name!r} has no mask token, so it cannot train a masked LM.")
        elif tok.pad_token is None:  # GPT-2 style tokenizers pad with EOS (TaskDatasets): this one has neither
            raise WrongTaskError(f"The tokenizer of {name!r} has neither a pad nor an EOS token; add a pad token.")
        if self.masked_lm:
            self.tokenize_kwargs.setdefault("return_special_tokens_mask", True)

    def _resolve_block_size(self, block_size: int | None, config: Any) -> int:
        limit = position_limit(self.tokenizer, config)
        if block_size is None:
            return min(limit, DEFAULT_BLOCK_SIZE)
        if not is_count(block_size, 2):
            raise InvalidInputError(f"block_size must be an integer >= 2, got {block_size!r}.")
        if block_size > limit:
            warnings.warn(
                f"block_size={block_size} is larger than the model maximum ({limit} tokens); using {limit}.", stacklevel=4
            )
            return limit
        return block_size

    def _eos_between_documents(self) -> int | None:
        """Causal mode: the EOS id to append after each text, unless the tokenizer already ends texts with it."""
        tok = self.tokenizer
        if self.masked_lm or tok.eos_token_id is None:
            return None
        ids = tok("a", verbose=False)["input_ids"]
        return None if ids and ids[-1] == tok.eos_token_id else tok.eos_token_id

    def _blocks(self, dset: Any, split: str) -> Any:
        kw = self.tokenize_kwargs
        keys = [k for k in self.tokenizer("a", verbose=False, **kw) if k != "offset_mapping"]
        fn = partial(
            _tokenize_blocks,
            tokenizer=self.tokenizer,
            tokenize_kwargs=kw,
            keys=keys,
            text_col=self.text_col,
            block_size=self.block_size,
            eos_id=self._eos_between_documents(),
            split=split,
        )
        out = self._map_split(dset, fn, "Tokenizing and grouping", split)
        if len(out) == 0:
            raise EmptyDatasetError(
                f"The {split} corpus is empty: its rows of {self.text_col!r} hold no text (or fewer than 2 tokens). "
                "Pass non-empty texts; with very few documents, pass a validation set (valid_df, valid_csv, ...)."
            )
        return out

    @property
    def max_length(self) -> int:
        return self.block_size

    # -- what the dataloaders use ------------------------------------------------------------------------
    def model_columns(self, dset: Any) -> list[str]:
        cols = super().model_columns(dset)
        return cols + (["special_tokens_mask"] if "special_tokens_mask" in dset.column_names else [])

    def default_collate(self) -> Any:
        return self.collate

    def row_view(self, row: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """A decoded block; in masked mode the positions the model must predict are marked `[[token]]`."""
        ids = list(row["input_ids"])
        if raw:
            return {"input_ids": str(ids[:12])[:-1] + (", ...]" if len(ids) > 12 else "]"), "n_tokens": len(ids)}
        if not self.masked_lm:
            return {"text": self.tokenizer.decode(ids), "n_tokens": len(ids)}
        labels = row.get("labels")
        if labels is None:  # a training block: mask it the way training would
            cols = {k: row[k] for k in ("input_ids", "special_tokens_mask") if k in row}
            batch = self.collate.lm([cols])
            labels = batch["labels"][0].tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        shown = [
            f"[[{self.tokenizer.convert_ids_to_tokens(y)}]]" if y != IGNORE else t for t, y in zip(tokens, labels, strict=True)
        ]
        return {
            "text": self.tokenizer.convert_tokens_to_string(shown),
            "n_tokens": len(ids),
            "n_masked": sum(y != IGNORE for y in labels),
        }

    def __repr__(self) -> str:
        mode = "masked" if self.masked_lm else "causal"
        return f"{type(self).__name__}({mode}, block_size={self.block_size}, train={len(self.train)}, valid={len(self.valid)})"

    # -- constructors ---------------------------------------------------------------------------------------
    columns: ClassVar[tuple[Option, ...]] = (Option("text_col", str, "text", "column of the texts", "text"),)
    options: ClassVar[tuple[Option, ...]] = (
        Option("block_size", int, None, f"tokens per block (default: the model maximum, at most {DEFAULT_BLOCK_SIZE})", 64),
        Option("masked_lm", bool, False, "masked LM (BERT-style) instead of causal next-token training", True),
        Option("mlm_probability", float, 0.15, "share of tokens masked in masked LM training", 0.15),
    )
    folder_columns: ClassVar[tuple[tuple[str, str], ...]] = (("text_col", "text"),)
    max_length_option = "block_size"

    @classmethod
    def _from_splits(
        cls, train: Any, valid: Any, tokenizer_name: str | None, load: LoadOptions, **options: Any
    ) -> LanguageModelDatasets:
        return cls(train, valid, tokenizer_name=tokenizer_name, seed=load.seed, **options, **load.build_kwargs())

    def manifest(self) -> dict[str, Any]:
        return {
            "masked_lm": self.masked_lm,
            "block_size": self.block_size,
            "mlm_probability": self.mlm_probability if self.masked_lm else None,
        }


# ---------------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------------
def token_cross_entropy(logits: Any, labels: Any) -> Any:
    """Mean cross-entropy over every position whose label is not -100 (a zero that keeps the graph when none is)."""
    import torch.nn.functional as F

    if not bool((labels != IGNORE).any()):  # nothing to predict in this batch: a zero that keeps the graph
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=IGNORE)


def causal_lm_loss(logits: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy: position t predicts label t+1; -100 labels (padding) are ignored."""
    return token_cross_entropy(logits[:, :-1], labels[:, 1:])


def masked_lm_loss(logits: Any, labels: Any) -> Any:
    """Mean cross-entropy over masked positions (every other label is -100)."""
    return token_cross_entropy(logits, labels)


# ---------------------------------------------------------------------------------------------------
# fill-mask
# ---------------------------------------------------------------------------------------------------
@dataclass
class MaskPrediction:
    """The top-k fills of one mask: candidates are `(token, token_id, score, sequence)` dicts, best first."""

    start: int
    end: int
    candidates: list[dict[str, Any]]


@dataclass
class FillMaskResult:
    text: str
    masks: list[MaskPrediction]
    filled: str
    windows: int = 1


@dataclass
class FillMaskResults(Results):
    """Fill-mask predictions for a list of texts."""

    items: list[FillMaskResult]

    def decisions(self) -> list[tuple[str, ...]]:
        return [tuple(m.candidates[0]["token"] for m in r.masks) for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: sentences, `filled` (every mask by its best token) and per mask the top-k `{token, score, sequence}`.
        Medium adds token ids and each mask's character span. High adds the number of windows per text."""
        level = DetailLevel(detail_level)
        keys = ("token", "score", "sequence") + (("token_id",) if level.at_least(DetailLevel.Medium) else ())
        out: dict[str, Any] = {
            "sentences": [r.text for r in self.items],
            "filled": [r.filled for r in self.items],
            "predictions": [[[{k: c[k] for k in keys} for c in m.candidates] for m in r.masks] for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            out["mask_spans"] = [[[m.start, m.end] for m in r.masks] for r in self.items]
        if level.at_least(DetailLevel.High):
            out["windows"] = [r.windows for r in self.items]
        return out


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], fills: Sequence[str]) -> str:
    for (s, e), f in sorted(zip(spans, fills, strict=True), reverse=True):
        text = text[:s] + f + text[e:]
    return text


@dataclass
class HFFillMask:
    """A masked LM and its tokenizer; `predict` fills every mask token of each text with its top-k tokens."""

    options: ClassVar[tuple[Option, ...]] = (Option("top_k", int, 5, "candidate tokens per mask", 3),)

    model: Any
    tokenizer: Any

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFFillMask:
        return cls(model, tokenizer)

    def _token_text(self, token_id: int) -> str:
        s = self.tokenizer.decode([token_id]).strip()
        return s[2:] if s.startswith("##") and len(s) > 2 else s  # a WordPiece continuation, shown joined

    def predict(self, texts: Sequence[str], batch_size: int = 32, top_k: int = 5) -> FillMaskResults:
        """Top-k tokens for every mask; long texts are windowed and each mask is read from its most central window."""
        tok = self.tokenizer
        mask = tok.mask_token
        if mask is None:
            raise WrongTaskError("This tokenizer has no mask token, so its model cannot fill masks.")
        if not is_count(top_k) or not top_k <= len(tok):
            raise InvalidInputError(f"top_k must be an integer from 1 to the vocabulary size ({len(tok)}), got {top_k!r}.")
        for i, t in enumerate(texts):
            if mask not in t:
                raise InvalidInputError(f"texts[{i}] has no {mask} token; put {mask} where a word should be predicted.")
        limit = model_max_length(self.model, tok)
        enc = encode(tok, texts, limit, LongText.Window, return_offsets=True)
        positions = [[k for k, t in enumerate(ids) if t == tok.mask_token_id] for ids in enc.features["input_ids"]]
        logits = forward_logits(self.model, tok, enc, batch_size, positions=positions)
        best: dict[tuple[int, int], tuple[int, Any, int]] = {}  # (text, char start) -> (centrality, logits, end)
        assert enc.offsets is not None
        for w, (sid, pos) in enumerate(zip(enc.sample_ids, positions, strict=True)):
            n_tok = len(enc.features["input_ids"][w])
            for j, k in enumerate(pos):
                start, end = enc.offsets[w][k]  # trimmed: RoBERTa's lstrip mask token no longer spans the space
                centrality = min(k, n_tok - 1 - k)
                if (sid, start) not in best or centrality > best[(sid, start)][0]:
                    best[(sid, start)] = (centrality, logits[w][j], end)
        return FillMaskResults([self._result(i, t, best, enc.n_windows[i], top_k) for i, t in enumerate(texts)])

    def _result(
        self, i: int, text: str, best: dict[tuple[int, int], tuple[int, Any, int]], windows: int, k: int
    ) -> FillMaskResult:
        import numpy as np

        found = sorted((start, end, lg) for (sid, start), (_, lg, end) in best.items() if sid == i)
        spans = [(s, e) for s, e, _ in found]
        tops = []
        for _, _, lg in found:
            probs = softmax(lg[None, :])[0]
            top = np.argsort(-probs)[:k]
            tops.append([(int(t), self._token_text(int(t)), float(probs[t])) for t in top])
        firsts = [c[0][1] for c in tops]
        masks = []
        for m, ((s, e), cands) in enumerate(zip(spans, tops, strict=True)):
            fills = list(firsts)
            rows = []
            for tid, word, score in cands:
                fills[m] = word
                rows.append({"token": word, "token_id": tid, "score": score, "sequence": _replace_spans(text, spans, fills)})
            masks.append(MaskPrediction(s, e, rows))
        return FillMaskResult(text, masks, _replace_spans(text, spans, firsts), windows)


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
class LMType(ChoiceEnum):
    """The kind of language model (AdaptNLP's `language_model_type`); the data's `masked_lm` decides by default."""

    Masked = "masked"
    Causal = "causal"
    Seq2Seq = "seq2seq"


class LanguageModelTuner(Tuner):
    """Fine-tune a causal or masked language model with fastai; perplexity is reported every epoch.

    `predict` generates continuations (causal) or fills `[MASK]` tokens (masked), as the Easy modules do.

    Example:
        >>> tuner = LanguageModelTuner(dls, "gpt2")
        >>> tuner.tune(1, lr=5e-4)
        >>> tuner.evaluate()["perplexity"]
        >>> tuner.predict("The match ended", num_tokens_to_produce=20)
    """

    options = (
        Option("language_model_type", LMType, None, "causal or masked; must match the data's masked_lm", "causal"),
    )
    datasets: LanguageModelDatasets
    language_model_type: LMType | None

    @property
    def spec(self) -> TaskSpec:
        return TASKS[1] if self.datasets.masked_lm else TASKS[0]

    def _check_data(self, dls: Any) -> Any:
        dsets = getattr(dls, "task_datasets", None)
        if not isinstance(dsets, LanguageModelDatasets):
            raise InvalidInputError("LanguageModelTuner needs dataloaders built by LanguageModelDatasets(...).dataloaders().")
        self.masked_lm, self.block_size = dsets.masked_lm, dsets.block_size
        kind = self.language_model_type
        if kind is LMType.Seq2Seq:
            raise InvalidChoiceError(
                "language_model_type='seq2seq': train sequence-to-sequence models with SummarizationTuner or "
                "TranslationTuner on their datasets; LanguageModelTuner trains 'causal' or 'masked' models."
            )
        if kind is not None and (kind is LMType.Masked) != self.masked_lm:
            data = "masked_lm=True" if self.masked_lm else "masked_lm=False (the default)"
            raise InvalidInputError(
                f"language_model_type={kind.value!r}, but the data was built with {data}; build it with "
                f"LanguageModelDatasets.from_...(..., masked_lm={kind is LMType.Masked}) to train a {kind.value} model."
            )
        return dsets

    def _check_model(self, model: Any) -> Any:
        check_lm_architecture(model.config, self.masked_lm, type(model).__name__)
        return self._fit_embeddings(model)

    def _from_pretrained(self, location: str, config: Any) -> Any:
        """A causal or masked LM; warns when its LM head starts untrained."""
        import transformers

        check_lm_architecture(config, self.masked_lm, self.base_model)
        auto = transformers.AutoModelForMaskedLM if self.masked_lm else transformers.AutoModelForCausalLM
        loaded: Any = auto.from_pretrained(location, config=config, output_loading_info=True, trust_remote_code=False)
        model, info = loaded
        missing = list(info.get("missing_keys") or [])
        self._new_weights = missing  # a LoRA adapter trains and saves these too (adapt.adapters.lora_config)
        if missing:
            warnings.warn(
                f"{self.base_model!r} has no trained {'masked-LM' if self.masked_lm else 'LM'} head: {len(missing)} weight "
                f"tensors were newly initialised (e.g. {missing[0]}). Its predictions are random until it is fine-tuned.",
                stacklevel=5,
            )
        return self._fit_embeddings(model)

    def _fit_embeddings(self, model: Any) -> Any:
        if len(self.tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(self.tokenizer))
        limit = position_limit(self.tokenizer, model.config)
        if self.block_size > limit:
            raise InvalidInputError(f"block_size={self.block_size} exceeds what {self.base_model!r} takes ({limit} positions).")
        return model

    def default_loss(self) -> Any:
        return masked_lm_loss if self.masked_lm else causal_lm_loss

    def default_metrics(self) -> list[Any]:
        from fastai.metrics import Perplexity

        return [Perplexity()]

    def evaluate(self) -> dict[str, float]:
        """Validation loss (mean token cross-entropy) and perplexity, `exp(loss)`."""
        import math

        loss = super().evaluate()["valid_loss"]
        return {"valid_loss": loss, "perplexity": math.exp(loss)}


# ---------------------------------------------------------------------------------------------------
# Easy modules and the task declarations
# ---------------------------------------------------------------------------------------------------
class EasyTextGenerator(EasyBase):
    """Generate text with any causal LM folder or hub model (adapt save, plain transformers).

    Example:
        >>> gen = EasyTextGenerator()
        >>> gen.generate("The match ended", "models/tiny-gpt2", num_tokens_to_produce=20, do_sample=True, seed=0)
    """


    def generate(
        self,
        text: Any,
        model_name_or_path: ModelRef,
        mini_batch_size: int = 32,
        num_tokens_to_produce: int = 50,
        detail_level: DetailLevel | str = DetailLevel.Low,
        seed: int | None = None,
        **generate_options: Any,
    ) -> dict[str, Any]:
        """Continue one prompt or a list, batched with left padding.

        Greedy by default; `do_sample=True` (with `top_k`, `top_p`, `temperature`), or `num_beams=4` for beam search;
        `seed` makes sampling reproducible. Returns `{"generated_text": [prompt + continuation, ...]}`; Medium adds
        `prompts` and `continuations`, High adds `token_ids` and per-token `token_scores` (log-probabilities).
        An empty prompt starts from the BOS token (models without one refuse it).
        """
        check_num_tokens(num_tokens_to_produce)
        return self.predict(
            text, model_name_or_path, mini_batch_size, detail_level,
            num_tokens_to_produce=num_tokens_to_produce, seed=seed, **generate_options,
        )


class EasyFillMask(EasyBase):
    """Fill `[MASK]` tokens (the model's mask token) with any masked LM folder or hub model.

    Example:
        >>> EasyFillMask().fill_mask("Shares [MASK] sharply on Monday.", "models/bbc-mlm", top_k=3)
    """


    def fill_mask(
        self,
        text: Any,
        model_name_or_path: ModelRef,
        top_k: int = 5,
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
    ) -> dict[str, Any]:
        """For each mask of each text, the `top_k` tokens with scores and the filled sentences (JSON-safe)."""
        return self.predict(text, model_name_or_path, mini_batch_size, detail_level, top_k=top_k)


_LM: dict[str, Any] = {
    "datasets": LanguageModelDatasets,
    "tuner": LanguageModelTuner,
    "metrics": ("perplexity",),
    "saved_as": TASK,
    "data_forms": ("csv", "jsonl", "folder"),
}
TASKS = (
    TaskSpec(
        name=TASK,
        summary="causal (next-token) language models and text generation",
        aliases=("lm", "causal_lm", "generation", "text_generation"),
        easy=EasyTextGenerator,
        predictor=HFTextGenerator,
        fields=(Field("text", allow_empty=True),),
        auto_class="AutoModelForCausalLM",
        pipeline_tag="text-generation",
        heads=CAUSAL_HEADS,
        verb="generate",
        variant={"masked_lm": False},
        exports=("LMType",),
        **_LM,
    ),
    TaskSpec(
        name="masked_language_modeling",
        summary="masked (BERT-style) language models and fill-mask",
        aliases=("mlm", "masked_lm", "fill_mask"),
        easy=EasyFillMask,
        predictor=HFFillMask,
        fields=TEXT,
        auto_class="AutoModelForMaskedLM",
        pipeline_tag="fill-mask",
        heads=MASKED_HEADS,
        verb="fill_mask",
        variant={"masked_lm": True},
        data_defaults={"masked_lm": True},
        **_LM,
    ),
)
