"""Text generation shared by the causal LM and encoder-decoder tasks: declared options, seeding, batched
`model.generate` with per-token scores, and the causal `HFTextGenerator`.

`HFTextGenerator` (decoder-only, left padding) and `adapt.tasks.seq2seq.HFSeq2SeqGenerator` both call
`generate_batch`, and both declare their options from `GENERATE_OPTIONS`, so every generation option Easy
accepts is accepted by the CLI and the server too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

from .enums import DetailLevel
from .errors import InvalidInputError, is_count
from .inference import check_batch_size, model_max_length, note_truncated, pad_batch, progress
from .options import Option
from .results import Results

logger = logging.getLogger(__name__)

__all__ = [
    "GENERATE_OPTIONS",
    "GenerationResult",
    "GenerationResults",
    "HFTextGenerator",
    "check_num_tokens",
    "cut_at_eos",
    "generate_batch",
    "id_set",
    "position_limit",
    "seeded",
]

# options passed on to `model.generate` (beyond these, transformers' own names are refused up front)
GENERATE_OPTIONS = (
    Option("seed", int, None, "seed for sampling; the global RNG is restored afterwards", 0),
    Option("do_sample", bool, False, "sample instead of greedy/beam search", True),
    Option("num_beams", int, 1, "beam search width (1 = greedy)", 2),
    Option("top_k", int, None, "sample from the k most likely tokens", 5),
    Option("top_p", float, None, "nucleus sampling: the smallest set of tokens with this total probability", 0.9),
    Option("temperature", float, None, "sampling temperature", 0.7),
    Option("no_repeat_ngram_size", int, None, "never repeat an n-gram of this size", 3),
    Option("repetition_penalty", float, None, "penalty for repeated tokens (1.0 = none)", 1.2),
    Option("length_penalty", float, None, "beam search: exponent of the length normalisation", 1.0),
    Option("min_new_tokens", int, None, "generate at least this many tokens", 1),
    Option("early_stopping", bool, None, "beam search: stop when every beam is done", True),
    Option("typical_p", float, None, "typical sampling mass", 0.9),
    Option("eos_token_id", (int, list), None, "token id(s) that end a generation", 2),
    Option("forced_bos_token_id", int, None, "the first generated token (the target language of mBART, M2M, NLLB)", 0),
    Option("min_length", int, None, "the shortest output, in tokens", 1),
    Option("bad_words_ids", list, None, "token id sequences never to generate", [[3]]),
    Option("num_beam_groups", int, None, "diverse beam search groups (divides num_beams)", 1),
    Option("diversity_penalty", float, None, "diverse beam search penalty between groups", 0.0),
    Option("generate_kwargs", dict, None, "any other transformers GenerationConfig fields, checked by transformers", {}),
)


def check_num_tokens(n: Any) -> int:
    """`n` if it is a positive integer, else `InvalidInputError`."""
    if not is_count(n):
        raise InvalidInputError(f"num_tokens_to_produce must be a positive integer, got {n!r}.")
    return n


def position_limit(tokenizer: Any, config: Any) -> int:
    """The longest sequence the model can take (tokenizer and position-embedding limits)."""
    return model_max_length(SimpleNamespace(config=config), tokenizer, cap=1_000_000)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
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


def id_set(*values: Any) -> set[int]:
    """Token ids from ints, lists of ints and Nones (configs may list several EOS ids)."""
    out: set[int] = set()
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            out.add(v)
        elif isinstance(v, (list, tuple)):
            out.update(x for x in v if isinstance(x, int))
    return out


def cut_at_eos(ids: list[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    """Generated ids up to and including the first EOS, without the trailing padding of rows that finished early."""
    for k, t in enumerate(ids):
        if t in eos_ids:
            return ids[: k + 1]
    end = len(ids)
    while pad_id is not None and end > 0 and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]


def check_generate_options(
    batch_size: int, options: dict[str, Any], defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The keywords for `generate`: the declared options plus `generate_kwargs` (fields of transformers'
    `GenerationConfig`, which checks them), with the checks transformers would fail on obscurely."""
    check_batch_size(batch_size)
    extra = dict(options.pop("generate_kwargs", None) or {})
    reserved = sorted(set(extra) & {"max_new_tokens", "max_length", "num_return_sequences", "return_dict_in_generate"})
    if reserved:
        raise InvalidInputError(f"generate_kwargs may not set {reserved}: adapt sets them (use num_tokens_to_produce).")
    if extra:
        from transformers import GenerationConfig

        unknown = sorted(k for k in extra if not hasattr(GenerationConfig(), k))
        if unknown:
            raise InvalidInputError(f"generate_kwargs {unknown} are not GenerationConfig fields of transformers.")
    merged = {**(defaults or {}), **extra, **{k: v for k, v in options.items() if v is not None}}
    beams = merged.get("num_beams", 1)
    if not is_count(beams):
        raise InvalidInputError(f"num_beams must be a positive integer (1 = greedy), got {beams!r}.")
    return merged


def generate_batch(
    model: Any,
    tokenizer: Any,
    feats: dict[str, list[list[int]]],
    idx: Sequence[int],
    n: int,
    scores: bool,
    options: dict[str, Any],
    left_pad: bool,
) -> list[tuple[list[int], list[float] | None]]:
    """`model.generate` on rows `idx` of `feats`, padded per batch: each row's new ids (cut at EOS) and their
    log-probabilities when `scores`. Decoder-only models are left-padded and continue the prompt."""
    import torch

    gen_config = getattr(model, "generation_config", None)
    eos = id_set(
        tokenizer.eos_token_id, model.config.eos_token_id, getattr(gen_config, "eos_token_id", None), options.get("eos_token_id")
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos) if eos else None
    names = [k for k in ("input_ids", "attention_mask") if k in feats]
    batch = {k: v.to(model.device) for k, v in pad_batch(feats, idx, 0 if pad is None else pad, names, left=left_pad).items()}
    if model.training:  # (each switch walks every module)
        model.eval()
    try:
        with torch.inference_mode():
            out = model.generate(
                **batch, max_new_tokens=n, pad_token_id=pad, return_dict_in_generate=True, output_scores=scores, **options
            )
    except (TypeError, ValueError) as e:
        named = sorted(k for k in options if k in str(e))  # only the options transformers names, not all of them
        what = f"the generation options {named}" if named else "these generation settings"
        raise InvalidInputError(f"transformers refused {what}: {e}") from e
    start = batch["input_ids"].shape[1] if left_pad else 1  # after the prompt, or after the decoder start token
    trans = None
    if scores:
        beams = getattr(out, "beam_indices", None)
        trans = model.compute_transition_scores(out.sequences, out.scores, beams, normalize_logits=beams is None)
        trans = trans.float().cpu().tolist()
    res = []
    for r, row in enumerate(out.sequences[:, start:].tolist()):
        kept = cut_at_eos(row, eos, pad)
        res.append((kept, [float(x) for x in trans[r][: len(kept)]] if trans is not None else None))
    return res


@dataclass
class GenerationResult:
    """One prompt's continuation; `token_ids`/`token_scores` are the generated tokens and their log-probabilities."""

    prompt: str
    continuation: str
    token_ids: list[int]
    token_scores: list[float] | None = None
    prompt_truncated: bool = False


@dataclass
class GenerationResults(Results):
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


@dataclass
class HFTextGenerator:
    """A causal LM and its tokenizer; `predict` generates for a list of prompts (the path every generator uses)."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("num_tokens_to_produce", int, 50, "tokens to generate per prompt", 8),
        *GENERATE_OPTIONS,
    )
    computes_scores: ClassVar[bool] = True

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
            note_truncated(sum(cut), f"were prompts longer than {keep} tokens; their last {keep} were kept")
        return out, cut

    def predict(
        self,
        prompts: Sequence[str],
        batch_size: int = 32,
        scores: bool = False,
        num_tokens_to_produce: int = 50,
        seed: int | None = None,
        **generate_options: Any,
    ) -> GenerationResults:
        """Generate up to `num_tokens_to_produce` tokens per prompt with `model.generate` (greedy by default).

        Prompts are sorted by length and left-padded per batch. `seed` makes sampling reproducible; the other
        options (`GENERATE_OPTIONS`: do_sample, top_k, top_p, temperature, num_beams, ...) go to `generate`.
        `scores=True` (detail level High) adds each token's log-probability.
        """
        n = check_num_tokens(num_tokens_to_produce)
        options = check_generate_options(batch_size, generate_options)
        limit = position_limit(self.tokenizer, self.model.config)
        if n >= limit:
            raise InvalidInputError(f"num_tokens_to_produce={n} leaves no room for a prompt: the model takes {limit} positions.")
        ids, cut = self._prompt_ids(prompts, limit - n)
        feats = {"input_ids": ids, "attention_mask": [[1] * len(r) for r in ids]}
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        items: list[GenerationResult | None] = [None] * len(ids)
        with seeded(seed):
            for start in progress(list(range(0, len(order), batch_size)), len(order)):
                idx = order[start : start + batch_size]
                outs = generate_batch(self.model, self.tokenizer, feats, idx, n, scores, options, left_pad=True)
                for i, (new, token_scores) in zip(idx, outs, strict=True):
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    items[i] = GenerationResult(prompts[i], text, new, token_scores, cut[i])
        return GenerationResults([r for r in items if r is not None])
