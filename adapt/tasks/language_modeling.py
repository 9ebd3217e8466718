"""Language modelling: causal and masked LM fine-tuning, text generation and fill-mask.

`LanguageModelDatasets` concatenates texts and cuts them into blocks; `LanguageModelTuner` fine-tunes with
perplexity as the metric; `HFTextGenerator` (batched `model.generate` with left padding) and `HFFillMask` are
the prediction paths shared by the tuner's `predict`, `EasyTextGenerator` and `EasyFillMask`.
Importing this module is cheap: datasets, transformers, torch and fastai are imported when used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from types import SimpleNamespace
from typing import Any

from ..data import TaskDatasets, check_columns, dataframe_splits, read_text_folder, train_valid_splits
from ..enums import DetailLevel, LongText
from ..errors import EmptyDatasetError, InvalidChoiceError, InvalidInputError, ModelNotFoundError, WrongTaskError
from ..inference import EasyBase, encode, forward_logits, model_max_length, normalize_texts, softmax
from ..tuner import Tuner

logger = logging.getLogger(__name__)

TASK = "language_modeling"
IGNORE = -100
DEFAULT_BLOCK_SIZE = 128
CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")
MASKED_HEADS = ("ForMaskedLM",)

__all__ = [
    "EasyFillMask",
    "EasyTextGenerator",
    "FillMaskResults",
    "GenerationResults",
    "HFFillMask",
    "HFTextGenerator",
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
        return AutoConfig.from_pretrained(name, **dict(auto_kwargs or {}))
    except (OSError, ValueError):
        return None


def _position_limit(tokenizer: Any, config: Any) -> int:
    """The longest block the model can take (tokenizer and position-embedding limits)."""
    return model_max_length(SimpleNamespace(config=config), tokenizer, cap=1_000_000)


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
                f"Row {i} of the {split} split has a {type(t).__name__} in {text_col!r}, not text: {t!r:.60}."
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
        tokenizer: Any = None,
        num_proc: int | None = None,
        seed: int | None = 42,
    ) -> None:
        if not isinstance(mlm_probability, (int, float)) or not 0 < mlm_probability < 1:
            raise InvalidInputError(f"mlm_probability must be a number between 0 and 1, got {mlm_probability!r}.")
        # no truncation: the blocks are the length limit
        kw = {"truncation": False, "max_length": None, **dict(tokenize_kwargs or {})}
        super().__init__(
            train_dset,
            valid_dset,
            tokenizer_name=tokenizer_name,
            tokenize=False,
            tokenize_kwargs=kw,
            auto_kwargs=auto_kwargs,
            tokenizer=tokenizer,
            num_proc=num_proc,
        )
        for split, d in (("train", self.train), ("validation", self.valid)):
            check_columns(d.column_names, [text_col], f"{split} split")
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

    # -- set-up ---------------------------------------------------------------------------------------------
    def _check_tokenizer(self, config: Any) -> None:
        tok = self.tokenizer
        name = self.tokenizer_name
        if self.masked_lm:
            if config is not None:
                check_lm_architecture(config, True, str(name))
            if tok.mask_token is None:
                raise WrongTaskError(f"The tokenizer of {name!r} has no mask token, so it cannot train a masked LM.")
        elif tok.pad_token is None:  # GPT-2 style: the collator pads the short last block with EOS (labels -100)
            if tok.eos_token is None:
                raise WrongTaskError(f"The tokenizer of {name!r} has neither a pad nor an EOS token; add a pad token.")
            tok.pad_token = tok.eos_token
            logger.info("the tokenizer has no pad token; padding with its EOS token %r", tok.eos_token)
        if self.masked_lm:
            self.tokenize_kwargs.setdefault("return_special_tokens_mask", True)

    def _resolve_block_size(self, block_size: int | None, config: Any) -> int:
        limit = _position_limit(self.tokenizer, config)
        if block_size is None:
            return min(limit, DEFAULT_BLOCK_SIZE)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 2:
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
        keys = [k for k in self.tokenizer("a", verbose=False, **kw).keys() if k != "offset_mapping"]
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
        out = dset.map(
            fn,
            batched=True,
            with_indices=True,
            remove_columns=dset.column_names,
            num_proc=self.num_proc,
            desc=f"Tokenizing and grouping ({split})",
        )
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
    @classmethod
    def from_hf(
        cls,
        dataset_or_dict: Any,
        text_col: str,
        tokenizer_name: str,
        train_split: str = "train",
        valid_split: str = "validation",
        split_pct: float = 0.2,
        seed: int | None = 42,
        block_size: int | None = None,
        masked_lm: bool = False,
        mlm_probability: float = 0.15,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> LanguageModelDatasets:
        """From a `datasets.Dataset` (split randomly by `split_pct`) or a `DatasetDict` with named splits."""
        train, valid = train_valid_splits(dataset_or_dict, train_split, valid_split, split_pct, seed)
        return cls(
            train,
            valid,
            tokenizer_name=tokenizer_name,
            text_col=text_col,
            block_size=block_size,
            masked_lm=masked_lm,
            mlm_probability=mlm_probability,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
            seed=seed,
        )

    @classmethod
    def from_dfs(
        cls,
        train_df: Any,
        text_col: str,
        tokenizer_name: str,
        valid_df: Any = None,
        split_func: Callable[[Any], tuple[Sequence[int], Sequence[int]]] | None = None,
        split_pct: float = 0.2,
        seed: int | None = 42,
        block_size: int | None = None,
        masked_lm: bool = False,
        mlm_probability: float = 0.15,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> LanguageModelDatasets:
        """From pandas DataFrames; without `valid_df`, `split_func(df)` or a seeded `split_pct` split is used."""
        train, valid = dataframe_splits(train_df, [text_col], valid_df, split_func, split_pct, seed)
        return cls.from_hf(
            {"train": train, "validation": valid},
            text_col,
            tokenizer_name,
            seed=seed,
            block_size=block_size,
            masked_lm=masked_lm,
            mlm_probability=mlm_probability,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_csvs(
        cls,
        train_csv: str | os.PathLike[str],
        text_col: str,
        tokenizer_name: str,
        valid_csv: str | os.PathLike[str] | None = None,
        split_pct: float = 0.2,
        seed: int | None = 42,
        block_size: int | None = None,
        masked_lm: bool = False,
        mlm_probability: float = 0.15,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
        **kwargs: Any,
    ) -> LanguageModelDatasets:
        """From CSV files read by `datasets` (Arrow, memory-mapped); `**kwargs` go to the CSV reader."""
        from pathlib import Path

        from datasets import load_dataset

        files = {"train": str(train_csv), **({"validation": str(valid_csv)} if valid_csv is not None else {})}
        for f in files.values():
            if not Path(f).is_file():
                raise FileNotFoundError(f"CSV file {f!r} does not exist.")
        return cls.from_hf(
            load_dataset("csv", data_files=files, **kwargs),
            text_col,
            tokenizer_name,
            split_pct=split_pct,
            seed=seed,
            block_size=block_size,
            masked_lm=masked_lm,
            mlm_probability=mlm_probability,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_folders(
        cls,
        train_path: str | os.PathLike[str],
        tokenizer_name: str,
        valid_path: str | os.PathLike[str] | None = None,
        extensions: Sequence[str] = (".txt",),
        encoding: str = "utf-8",
        max_items: int | None = None,
        split_pct: float = 0.2,
        seed: int | None = 42,
        block_size: int | None = None,
        masked_lm: bool = False,
        mlm_probability: float = 0.15,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> LanguageModelDatasets:
        """One document per text file, searched recursively; `max_items` takes a seeded random subset."""
        from datasets import Dataset

        data = {"train": Dataset.from_dict(read_text_folder(train_path, None, extensions, encoding, max_items, seed))}
        if valid_path is not None:
            data["validation"] = Dataset.from_dict(read_text_folder(valid_path, None, extensions, encoding, None, seed))
        return cls.from_hf(
            data,
            "text",
            tokenizer_name,
            split_pct=split_pct,
            seed=seed,
            block_size=block_size,
            masked_lm=masked_lm,
            mlm_probability=mlm_probability,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )


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
# generation
# ---------------------------------------------------------------------------------------------------
def normalize_prompts(text: Any) -> tuple[list[str], bool]:
    """One prompt or a list; empty prompts are allowed here (the generator decides whether it can start from BOS)."""
    single = isinstance(text, str)
    items = [text] if single else text
    if items is None or isinstance(items, (bytes, dict, tuple)) or not isinstance(items, Sequence) or len(items) == 0:
        raise InvalidInputError(f"Expected a prompt string or a non-empty list of prompts, got {type(text).__name__}.")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            where = "text" if single else f"texts[{i}]"
            raise InvalidInputError(f"{where} is a {type(t).__name__}, not a string: {t!r:.80}.")
    return list(items), single


def _check_num_tokens(n: Any) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise InvalidInputError(f"num_tokens_to_produce must be a positive integer, got {n!r}.")
    return n


@dataclass
class GenerationResult:
    """One prompt's continuation; `token_ids`/`token_scores` are the generated tokens and their log-probabilities."""

    prompt: str
    continuation: str
    token_ids: list[int]
    token_scores: list[float] | None = None
    prompt_truncated: bool = False


@dataclass
class GenerationResults:
    """Generations for a list of prompts."""

    items: list[GenerationResult]

    def decisions(self) -> list[str]:
        return [r.continuation for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: `generated_text` (prompt + continuation). Medium adds prompts and continuations. High adds token ids
        and per-token log-probabilities."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {"generated_text": [r.prompt + r.continuation for r in self.items]}
        if level.at_least(DetailLevel.Medium):
            out["prompts"] = [r.prompt for r in self.items]
            out["continuations"] = [r.continuation for r in self.items]
        if level.at_least(DetailLevel.High):
            out["token_ids"] = [r.token_ids for r in self.items]
            out["token_scores"] = [r.token_scores for r in self.items]
            out["prompt_truncated"] = [r.prompt_truncated for r in self.items]
        return out


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's global RNG seeded by `seed`, restoring the previous RNG state afterwards."""
    import torch

    if seed is None:
        yield
        return
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidInputError(f"seed must be an integer or None, got {seed!r}.")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _id_set(*values: Any) -> set[int]:
    """Token ids from ints, lists of ints and Nones (configs may list several EOS ids)."""
    out: set[int] = set()
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            out.add(v)
        elif isinstance(v, (list, tuple)):
            out.update(x for x in v if isinstance(x, int))
    return out


def _cut_at_eos(ids: list[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    """Generated ids up to and including the first EOS, without the trailing padding of rows that finished early."""
    for k, t in enumerate(ids):
        if t in eos_ids:
            return ids[: k + 1]
    end = len(ids)
    while pad_id is not None and end > 0 and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]


@dataclass
class HFTextGenerator:
    """A causal LM and its tokenizer; `predict` generates for a list of prompts (the path every generator uses)."""

    model: Any
    tokenizer: Any

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFTextGenerator:
        return cls(model, tokenizer)

    def _prompt_ids(self, prompts: Sequence[str], keep: int) -> tuple[list[list[int]], list[bool]]:
        tok = self.tokenizer
        bos = tok.bos_token_id if tok.bos_token_id is not None else getattr(self.model.config, "bos_token_id", None)
        ids = tok(list(prompts), add_special_tokens=True, verbose=False)["input_ids"] if prompts else []
        out, cut = [], []
        for i, (p, row) in enumerate(zip(prompts, ids, strict=True)):
            if not p.strip() or not row:
                if bos is None:
                    raise InvalidInputError(
                        f"Prompt {i} is empty, and this model has no BOS token to start from; pass some text."
                    )
                row = [bos]
            cut.append(len(row) > keep)
            out.append(row[-keep:])  # keep the end of an over-long prompt: that is what the model continues
        if any(cut):
            logger.warning("%d of %d prompts were longer than %d tokens; kept their last %d", sum(cut), len(ids), keep, keep)
        return out, cut

    def predict(
        self,
        prompts: Sequence[str],
        batch_size: int = 32,
        num_tokens_to_produce: int = 50,
        seed: int | None = None,
        with_scores: bool = False,
        **generate_kwargs: Any,
    ) -> GenerationResults:
        """Generate up to `num_tokens_to_produce` tokens per prompt with `model.generate` (greedy by default).

        Prompts are sorted by length and left-padded per batch. `seed` makes sampling reproducible;
        `generate_kwargs` (do_sample, top_k, top_p, temperature, num_beams, ...) go to `generate`.
        """
        n = _check_num_tokens(num_tokens_to_produce)
        if batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {batch_size}.")
        if generate_kwargs.get("num_return_sequences", 1) != 1:
            raise InvalidInputError("num_return_sequences must be 1; call again with another seed for more samples.")
        limit = _position_limit(self.tokenizer, self.model.config)
        if n >= limit:
            raise InvalidInputError(f"num_tokens_to_produce={n} leaves no room for a prompt: the model takes {limit} positions.")
        ids, cut = self._prompt_ids(prompts, limit - n)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        items: list[GenerationResult | None] = [None] * len(ids)
        with _seeded(seed):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                for i, (new, scores) in zip(idx, self._generate(ids, idx, n, with_scores, generate_kwargs), strict=True):
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    items[i] = GenerationResult(prompts[i], text, new, scores, cut[i])
        return GenerationResults([r for r in items if r is not None])

    def _generate(
        self, ids: list[list[int]], idx: list[int], n: int, with_scores: bool, kwargs: dict[str, Any]
    ) -> list[tuple[list[int], list[float] | None]]:
        import torch

        from ..inference import _pad_batch

        tok, model = self.tokenizer, self.model
        gen_config = getattr(model, "generation_config", None)
        eos = _id_set(
            tok.eos_token_id, model.config.eos_token_id, getattr(gen_config, "eos_token_id", None), kwargs.get("eos_token_id")
        )
        pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos) if eos else None
        rows = [ids[i] for i in idx]
        feats = {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}
        batch = _pad_batch(feats, range(len(rows)), 0 if pad is None else pad, ["input_ids", "attention_mask"], left=True)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        model.eval()
        try:
            with torch.inference_mode():
                out = model.generate(
                    **batch,
                    max_new_tokens=n,
                    pad_token_id=pad,
                    return_dict_in_generate=True,
                    output_scores=with_scores,
                    **kwargs,
                )
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"transformers rejected the generation arguments {sorted(kwargs)}: {e}") from e
        new = out.sequences[:, batch["input_ids"].shape[1] :].tolist()
        trans = None
        if with_scores:
            beams = getattr(out, "beam_indices", None)
            trans = model.compute_transition_scores(out.sequences, out.scores, beams, normalize_logits=beams is None)
            trans = trans.float().cpu().tolist()
        res = []
        for r, row in enumerate(new):
            kept = _cut_at_eos(row, eos, pad)
            res.append((kept, [float(x) for x in trans[r][: len(kept)]] if trans is not None else None))
        return res


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
class FillMaskResults:
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
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= len(tok):
            raise InvalidInputError(f"top_k must be an integer from 1 to the vocabulary size ({len(tok)}), got {top_k!r}.")
        for i, t in enumerate(texts):
            if mask not in t:
                raise InvalidInputError(f"texts[{i}] has no {mask} token; put {mask} where a word should be predicted.")
        limit = model_max_length(self.model, tok)
        enc = encode(tok, texts, limit, LongText.Window, return_offsets=True)
        positions = [[k for k, t in enumerate(ids) if t == tok.mask_token_id] for ids in enc.features["input_ids"]]
        logits = forward_logits(self.model, tok, enc, batch_size, positions=positions)
        best: dict[tuple[int, int], tuple[int, Any, int]] = {}  # (text, char start) -> (centrality, logits, end)
        for w, (sid, pos) in enumerate(zip(enc.sample_ids, positions, strict=True)):
            n_tok = len(enc.features["input_ids"][w])
            for j, k in enumerate(pos):
                start, end = enc.offsets[w][k]
                while start < end and texts[sid][start].isspace():  # lstrip mask tokens (RoBERTa) span the space
                    start += 1
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
def _load_lm(model_name: Any, masked_lm: bool, tokenizer: Any) -> Any:
    """A causal or masked LM from a hub name, folder or model object; warns when its LM head starts untrained."""
    import transformers

    from ..modelio import resolve_model_source

    if isinstance(model_name, transformers.PreTrainedModel):
        model = model_name
        check_lm_architecture(model.config, masked_lm, type(model).__name__)
    else:
        src = resolve_model_source(model_name)
        if src.kind == "flair":
            raise WrongTaskError(f"{model_name!r} is a flair model; LanguageModelTuner fine-tunes transformers models.")
        if src.manifest and src.manifest.get("task") not in (None, TASK):
            raise WrongTaskError(f"{model_name!r} holds a {src.manifest.get('task')!r} model, not a language model.")
        config = _load_config(src.location)
        if config is None:
            raise ModelNotFoundError(f"Could not load a model config from {model_name!r} (offline, or not a model).")
        check_lm_architecture(config, masked_lm, str(model_name))
        auto = transformers.AutoModelForMaskedLM if masked_lm else transformers.AutoModelForCausalLM
        model, info = auto.from_pretrained(src.location, config=config, output_loading_info=True)
        missing = list(info.get("missing_keys") or [])
        if missing:
            warnings.warn(
                f"{model_name!r} has no trained {'masked-LM' if masked_lm else 'LM'} head: {len(missing)} weight tensors "
                f"were newly initialised (e.g. {missing[0]}). Its predictions are random until it is fine-tuned.",
                stacklevel=4,
            )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return model


class LanguageModelTuner(Tuner):
    """Fine-tune a causal or masked language model with fastai; perplexity is reported every epoch.

    `predict` generates continuations (causal) or fills `[MASK]` tokens (masked), as the Easy modules do.

    Example:
        >>> tuner = LanguageModelTuner(dls, "gpt2")
        >>> tuner.tune(1, lr=5e-4)
        >>> tuner.evaluate()["perplexity"]
        >>> tuner.predict("The match ended", num_tokens_to_produce=20)
    """

    task = TASK

    def __init__(
        self,
        dls: Any,
        model_name: Any,
        tokenizer: Any = None,
        loss_func: Callable[..., Any] | None = None,
        metrics: Any = None,
        opt_func: Callable[..., Any] | None = None,
        additional_cbs: Any = None,
        expose_fastai_api: bool = False,
        device: Any = None,
        mixed_precision: str | None = None,
        **learner_kwargs: Any,
    ) -> None:
        from fastai.metrics import Perplexity

        dsets = getattr(dls, "task_datasets", None)
        if not isinstance(dsets, LanguageModelDatasets):
            raise ValueError("LanguageModelTuner needs dataloaders built by LanguageModelDatasets(...).dataloaders().")
        self.masked_lm = dsets.masked_lm
        self.block_size = dsets.block_size
        self.classes = []
        self.base_model = str(getattr(model_name, "name_or_path", model_name))
        model = _load_lm(model_name, self.masked_lm, tokenizer or dsets.tokenizer)
        limit = _position_limit(tokenizer or dsets.tokenizer, model.config)
        if self.block_size > limit:
            raise InvalidInputError(f"block_size={self.block_size} exceeds what {self.base_model!r} takes ({limit} positions).")
        super().__init__(
            dls,
            model,
            tokenizer=tokenizer,
            loss_func=loss_func or (masked_lm_loss if self.masked_lm else causal_lm_loss),
            metrics=[Perplexity()] if metrics is None else metrics,
            opt_func=opt_func,
            additional_cbs=additional_cbs,
            expose_fastai_api=expose_fastai_api,
            device=device,
            mixed_precision=mixed_precision,
            **learner_kwargs,
        )

    def evaluate(self) -> dict[str, float]:
        """Validation loss (mean token cross-entropy) and perplexity, `exp(loss)`."""
        with self.learn.no_bar():
            loss = float(self.learn.validate()[0])
        return {"valid_loss": loss, "perplexity": math.exp(loss)}

    def predictor(self) -> HFTextGenerator | HFFillMask:
        """The shared generation (causal) or fill-mask (masked) path over this tuner's model."""
        return HFFillMask(self.model, self.tokenizer) if self.masked_lm else HFTextGenerator(self.model, self.tokenizer)

    def predict(
        self, text: Any, bs: int = 32, detail_level: DetailLevel | str = DetailLevel.Low, **kwargs: Any
    ) -> dict[str, Any]:
        """Causal: generate (kwargs as `EasyTextGenerator.generate`). Masked: fill masks (`top_k=5`)."""
        level = DetailLevel(detail_level)
        if self.masked_lm:
            texts, _ = normalize_texts(text, allow_pairs=False)
            return self.predictor().predict(texts, batch_size=bs, **kwargs).to_dict(level)
        prompts, _ = normalize_prompts(text)
        with_scores = level.at_least(DetailLevel.High)
        return self.predictor().predict(prompts, batch_size=bs, with_scores=with_scores, **kwargs).to_dict(level)

    def export(
        self,
        path: str | os.PathLike[str],
        quantize: bool = False,
        onnx: bool = False,
        parity_texts: Sequence[Any] | None = None,
        min_agreement: float = 0.99,
        on_parity_fail: str = "raise",
    ) -> Any:
        """The saved folder plus a model card. int8 and ONNX copies are made for classifiers and taggers only."""
        if quantize or onnx:
            raise InvalidChoiceError(
                "int8 and ONNX copies are made for classification and tagging models; export a language model with "
                "quantize=False, onnx=False."
            )
        return super().export(path)

    def manifest(self) -> dict[str, Any]:
        dsets = self.dls.task_datasets
        return {
            "task": TASK,
            "masked_lm": self.masked_lm,
            "block_size": self.block_size,
            "mlm_probability": dsets.mlm_probability if self.masked_lm else None,
            "base_model": self.base_model,
        }


# ---------------------------------------------------------------------------------------------------
# Easy modules
# ---------------------------------------------------------------------------------------------------
class EasyTextGenerator(EasyBase):
    """Generate text with any causal LM folder or hub model (adapt save, plain transformers).

    Example:
        >>> gen = EasyTextGenerator()
        >>> gen.generate("The match ended", "models/tiny-gpt2", num_tokens_to_produce=20, do_sample=True, seed=0)
    """

    task = TASK
    auto_class = "AutoModelForCausalLM"
    hf_head = CAUSAL_HEADS
    hf_predictor = HFTextGenerator

    def generate(
        self,
        text: Any,
        model_name_or_path: Any,
        mini_batch_size: int = 32,
        num_tokens_to_produce: int = 50,
        detail_level: DetailLevel | str = DetailLevel.Low,
        seed: int | None = None,
        **generate_kwargs: Any,
    ) -> dict[str, Any]:
        """Continue one prompt or a list, batched with left padding.

        Greedy by default; `do_sample=True` (with `top_k`, `top_p`, `temperature`), or `num_beams=4` for beam search;
        `seed` makes sampling reproducible. Returns `{"generated_text": [prompt + continuation, ...]}`; Medium adds
        `prompts` and `continuations`, High adds `token_ids` and per-token `token_scores` (log-probabilities).
        An empty prompt starts from the BOS token (models without one refuse it).
        """
        level = DetailLevel(detail_level)
        prompts, _ = normalize_prompts(text)
        _check_num_tokens(num_tokens_to_produce)
        res = self.get_model(model_name_or_path).predict(
            prompts,
            batch_size=mini_batch_size,
            num_tokens_to_produce=num_tokens_to_produce,
            seed=seed,
            with_scores=level.at_least(DetailLevel.High),
            **generate_kwargs,
        )
        return res.to_dict(level)


class EasyFillMask(EasyBase):
    """Fill `[MASK]` tokens (the model's mask token) with any masked LM folder or hub model.

    Example:
        >>> EasyFillMask().fill_mask("Shares [MASK] sharply on Monday.", "models/bbc-mlm", top_k=3)
    """

    task = TASK
    auto_class = "AutoModelForMaskedLM"
    hf_head = MASKED_HEADS
    hf_predictor = HFFillMask

    def fill_mask(
        self,
        text: Any,
        model_name_or_path: Any,
        top_k: int = 5,
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
    ) -> dict[str, Any]:
        """For each mask of each text, the `top_k` tokens with scores and the filled sentences (JSON-safe)."""
        level = DetailLevel(detail_level)
        texts, _ = normalize_texts(text, allow_pairs=False)
        return self.get_model(model_name_or_path).predict(texts, batch_size=mini_batch_size, top_k=top_k).to_dict(level)
