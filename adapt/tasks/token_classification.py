"""Token classification (NER): CoNLL/DataFrame/HF datasets, tuner with seqeval metrics, `EasyTokenTagger`.

Words are tagged on their first sub-word (the others are ignored with -100, or labelled too on request).
Sentences and texts longer than the model maximum are split into overlapping windows, so no token is
dropped in training or inference; each sub-word takes its prediction from the window where it sits most
centrally. `aggregation_strategy` (`AggregationStrategy`: first, max, average, simple or none, as in
transformers' token-classification pipeline) turns sub-word predictions into word tags. HF and flair taggers
share one postprocessing path from word probabilities to entities.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from ..data import LoadOptions, TaskDatasets, bad_rows, check_columns
from ..easy import EasyBase
from ..enums import ChoiceEnum, DetailLevel, LongText
from ..errors import (
    DataNotFoundError,
    DecodeError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidInputError,
    NumClassesError,
    UnknownLabelError,
)
from ..inference import TEXT, encode, forward_logits, model_max_length, resolve_max_length, softmax
from ..options import Option
from ..results import ByInput, Results
from ..tuner import Tuner
from .base import TaskSpec

logger = logging.getLogger(__name__)

TASK = "token_classification"
IGNORE = -100

__all__ = [
    "TASKS",
    "AggregationStrategy",
    "EasyTokenTagger",
    "Entity",
    "FlairTokenTagger",
    "HFTokenTagger",
    "NERMetric",
    "TaggedWord",
    "TokenClassificationDatasets",
    "TokenClassificationTuner",
    "TokenTaggingResult",
    "TokenTaggingResults",
    "align_labels",
    "group_entities",
    "read_conll",
]


# ---------------------------------------------------------------------------------------------------
# reading and aligning
# ---------------------------------------------------------------------------------------------------
def read_conll(
    path: str | os.PathLike[str], token_col: int = 0, tag_col: int = -1, sep: str | None = None, encoding: str = "utf-8"
) -> dict[str, list[list[str]]]:
    """Read a CoNLL-style column file: one token per line, sentences separated by blank (or whitespace-only) lines.

    Columns are split on `sep` (default: any whitespace); `-DOCSTART-` lines are skipped.
    """
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    cur_tok: list[str] = []
    cur_tag: list[str] = []
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"CoNLL file {str(p)!r} does not exist.")
    try:
        lines = p.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError as e:
        raise DecodeError(str(p), encoding, e) from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            if cur_tok:
                tokens.append(cur_tok)
                tags.append(cur_tag)
                cur_tok, cur_tag = [], []
            continue
        cols = line.split(sep)
        if cols[0].startswith("-DOCSTART-"):
            continue
        n = len(cols)
        if not (-n <= token_col < n and -n <= tag_col < n) or token_col % n == tag_col % n:
            raise InvalidInputError(
                f"{p}:{lineno} has {n} column(s) ({line.strip()!r:.60}); token_col={token_col} and tag_col={tag_col} need "
                "two different ones. Pass sep= if the columns are not separated by whitespace."
            )
        cur_tok.append(cols[token_col])
        cur_tag.append(cols[tag_col].strip())
    if cur_tok:
        tokens.append(cur_tok)
        tags.append(cur_tag)
    return {"tokens": tokens, "tags": tags}


def _continuation_map(vocab: Sequence[str]) -> dict[int, int]:
    """B-X id -> I-X id, for labelling continuation sub-words."""
    index = {t: i for i, t in enumerate(vocab)}
    return {i: index["I-" + t[2:]] for i, t in enumerate(vocab) if t.startswith("B-") and "I-" + t[2:] in index}


def align_labels(
    word_ids: Sequence[int | None],
    word_tags: Sequence[int],
    label_all_subwords: bool = False,
    b_to_i: dict[int, int] | None = None,
) -> list[int]:
    """Per-token label ids: a word's first sub-word carries its tag; the rest get -100, or (label_all_subwords)
    the tag too, with B-X turned into I-X. Special tokens get -100."""
    out: list[int] = []
    prev: int | None = None
    for w in word_ids:
        if w is None:
            out.append(IGNORE)
        elif w != prev:
            out.append(word_tags[w])
        elif label_all_subwords:
            tag = word_tags[w]
            out.append((b_to_i or {}).get(tag, tag))
        else:
            out.append(IGNORE)
        prev = w
    return out


def _tokenize_and_align(
    batch: dict[str, list[Any]], tokenizer: Any, tokenize_kwargs: dict[str, Any], label_all_subwords: bool, b_to_i: dict[int, int]
) -> dict[str, list[Any]]:
    """Batched map: split words into sub-words, one row per window of long sentences, labels aligned."""
    kwargs = dict(tokenize_kwargs)
    for own in ("truncation", "is_split_into_words", "return_offsets_mapping"):  # set here (AdaptNLP's users passed them)
        kwargs.pop(own, None)
    max_length = kwargs.pop("max_length")
    stride = kwargs.pop("stride", max_length // 4)
    enc = tokenizer(
        batch["tokens"],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        **kwargs,
    )
    mapping = enc.pop("overflow_to_sample_mapping")
    labels, word_ids = [], []
    seen: set[int] = set()  # words already labelled in an earlier window of the same sentence
    for k, s in enumerate(mapping):
        if k == 0 or mapping[k - 1] != s:
            seen = set()
        wids = enc.word_ids(k)
        labs = align_labels(wids, batch["tag_ids"][s], label_all_subwords, b_to_i)
        # each word is labelled in one window only: overlaps are context, never counted twice, and a window
        # that starts inside a word never labels its continuation pieces as if they began it
        labs = [IGNORE if w is not None and w in seen else lab for w, lab in zip(wids, labs, strict=True)]
        seen.update(w for w in wids if w is not None)
        labels.append(labs)
        word_ids.append([-1 if w is None else w for w in wids])
    return {**enc, "labels": labels, "word_ids": word_ids}


def _row_problems(tokens: Sequence[Any], tags: Sequence[Any], split: str) -> list[tuple[str, int, str]]:
    """Every sentence that cannot be trained on, with what is wrong: `(split, row, problem)`."""
    if len(tokens) == 0:
        raise EmptyDatasetError(f"The {split} split has no sentences.")
    problems = []
    for i, (tok, tag) in enumerate(zip(tokens, tags, strict=True)):
        problem = _sentence_problem(tok, tag)
        if problem:
            problems.append((split, i, problem))
    return problems


def _sentence_problem(tok: Any, tag: Any) -> str | None:
    if not isinstance(tok, (list, tuple)) or len(tok) == 0:
        return f"an empty sentence (no tokens: {tok!r:.40}), drop it or give it tokens"
    if not isinstance(tag, (list, tuple)) or len(tok) != len(tag):
        n_tags = len(tag) if isinstance(tag, (list, tuple)) else repr(tag)
        return f"{len(tok)} tokens but {n_tags} tags (they must match)"
    bad = [t for t in tok if not isinstance(t, str) or not t.strip()]
    if bad:
        return f"an empty, whitespace-only or non-string token: {bad[0]!r}"
    odd = [t for t in tag if not isinstance(t, str) or not t.strip()]
    if odd:
        return (f"the tag {odd[0]!r} ({type(odd[0]).__name__}), but tags are names such as 'B-PER' or 'O': pass "
                "entity_mapping={0: 'O', 1: 'B-PER', ...} to name integer tags (or give the column ClassLabel features)")
    return None


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
class TokenClassificationDatasets(TaskDatasets):
    """Tagged-word datasets with a sorted, stable tag vocabulary and sub-word label alignment.

    Example:
        >>> dsets = TokenClassificationDatasets.from_conll("wnut.txt", model_path, split_pct=0.2)
        >>> dls = dsets.dataloaders(batch_size=16)
        >>> dls.show_batch()
    """

    words_pre_split = True
    columns: ClassVar[tuple[Option, ...]] = (
        Option("tokens_col", str, "tokens", "column of the token lists", "tokens"),
        Option("tags_col", str, "tags", "column of the tag lists (strings, or ClassLabel ids)", "tags"),
        Option("entity_mapping", (dict, list), None, "tag names by id ({0: 'O', 1: 'B-PER'}), for integer tags", ["O", "B-PER"]),
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option("label_all_subwords", bool, False, "label every sub-word (B-X becomes I-X), not only the first", False),
        Option("tokenize", bool, True, "tokenize now (False: set_tokenizer(...) and tokenize() later)", True),
    )

    @classmethod
    def _normalize_args(cls, given: dict[str, Any]) -> None:
        """`from_dfs(df, "tokens", "tags", "model")`: a name in entity_mapping's place is the tokenizer (adapt's order)."""
        if isinstance(given.get("entity_mapping"), (str, os.PathLike)) and "tokenizer_name" not in given:
            given["tokenizer_name"] = given.pop("entity_mapping")

    @classmethod
    def from_conll(
        cls,
        train_path: str | os.PathLike[str],
        tokenizer_name: str | None = None,
        valid_path: str | os.PathLike[str] | None = None,
        *,
        token_col: int = 0,
        tag_col: int = -1,
        sep: str | None = None,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> TokenClassificationDatasets:
        """From CoNLL-style column files (blank-line separated sentences; whitespace-only lines count as blank).

        `token_col`/`tag_col` are column positions, split on `sep` (default: whitespace); other keywords as `from_hf`.
        """
        from datasets import Dataset

        data: dict[str, Any] = {"train": Dataset.from_dict(read_conll(train_path, token_col, tag_col, sep, encoding))}
        if valid_path is not None:
            data["validation"] = Dataset.from_dict(read_conll(valid_path, token_col, tag_col, sep, encoding))
        return cls.from_hf(data, "tokens", "tags", tokenizer_name, **kwargs)

    @classmethod
    def _from_splits(  # type: ignore[override]
        cls,
        train: Any,
        valid: Any,
        tokenizer_name: str | None,
        load: LoadOptions,
        tokens_col: str = "tokens",
        tags_col: str = "tags",
        entity_mapping: dict[int, str] | list[str] | None = None,
        label_all_subwords: bool = False,
        tokenize: bool = True,
    ) -> TokenClassificationDatasets:
        """Tags may be strings, `ClassLabel` ids (whose names and order are kept) or ids named by `entity_mapping`."""
        from datasets import Dataset

        check_columns(train.column_names, [tokens_col, tags_col], "train split")
        check_columns(valid.column_names, [tokens_col, tags_col], "validation split")
        names = _mapping_names(entity_mapping) or getattr(getattr(train.features[tags_col], "feature", None), "names", None)
        splits = {
            "train": _as_strings(train, tokens_col, tags_col, names),
            "validation": _as_strings(valid, tokens_col, tags_col, names),
        }
        problems = [p for split, (toks, tags) in splits.items() for p in _row_problems(toks, tags, split)]
        if problems:
            raise bad_rows(problems)
        vocab = list(names) if names else sorted({t for row in splits["train"][1] for t in row})
        unknown = {t for row in splits["train"][1] for t in row} - set(vocab)
        if unknown:
            raise UnknownLabelError(f"Training tags {sorted(unknown)} are not in entity_mapping ({vocab}).")
        unknown = {t for row in splits["validation"][1] for t in row} - set(vocab)
        if unknown:
            raise UnknownLabelError(f"Validation tags {sorted(unknown)} never occur in training (training tags: {vocab}).")
        index = {t: i for i, t in enumerate(vocab)}
        encoded = [
            Dataset.from_dict({"tokens": toks, "tag_ids": [[index[t] for t in row] for row in tags]})
            for toks, tags in splits.values()
        ]
        tokenize_func = partial(_tokenize_and_align, label_all_subwords=label_all_subwords, b_to_i=_continuation_map(vocab))
        return cls(
            encoded[0],
            encoded[1],
            tokenizer_name=tokenizer_name,
            tokenize_func=tokenize_func,
            remove_cols=["tokens", "tag_ids"],
            vocab=vocab,
            tokenize=tokenize,
            **load.build_kwargs(),
        )

    def default_collate(self) -> Any:
        """Pads input ids and label ids (with -100) per batch."""
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(self.tokenizer)

    def row_view(self, row: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """Words with their tags (`word[TAG]`, untagged for O), or token ids and labels if `raw`."""
        if raw:
            return {
                "input_ids": str(row["input_ids"][:12])[:-1] + ", ...]",
                "labels": str(row["labels"][:12])[:-1] + ", ...]",
                "n_tokens": len(row["input_ids"]),
            }
        words: dict[int, list[int]] = {}
        tags: dict[int, str] = {}
        for tok, wid, lab in zip(row["input_ids"], row["word_ids"], row["labels"], strict=True):
            if wid < 0:
                continue
            words.setdefault(wid, []).append(tok)
            if lab != IGNORE and wid not in tags:
                tags[wid] = self.vocab[lab] if self.vocab else str(lab)
        shown = []
        for wid, ids in words.items():
            word = self.tokenizer.decode(ids).replace(" ", "")
            tag = tags.get(wid, "O")
            shown.append(word if tag == "O" else f"{word}[{tag}]")
        return {"tagged words": " ".join(shown), "n_words": len(words)}


def _mapping_names(entity_mapping: dict[int, str] | list[str] | None) -> list[str] | None:
    """Tag names in id order from AdaptNLP's `{id: name}` mapping (ids 0..n-1), or a list of names."""
    if entity_mapping is None:
        return None
    if isinstance(entity_mapping, dict):
        ids = sorted(int(k) for k in entity_mapping)
        if ids != list(range(len(ids))):
            raise InvalidInputError(f"entity_mapping must number the tags 0..{len(ids) - 1}; got ids {ids}.")
        return [str(entity_mapping[k] if k in entity_mapping else entity_mapping[str(k)]) for k in ids]  # type: ignore[index]
    return [str(n) for n in entity_mapping]


def _as_list(cell: Any) -> Any:
    """A list cell read back from CSV as its text (`"['EU', 'rejects']"`) becomes the list again."""
    import ast

    if isinstance(cell, str) and cell.lstrip().startswith("["):
        try:
            return ast.literal_eval(cell)
        except (ValueError, SyntaxError):
            return cell
    return cell


def _as_strings(dset: Any, tokens_col: str, tags_col: str, names: Sequence[str] | None) -> tuple[list[Any], list[Any]]:
    toks, tags = [_as_list(c) for c in dset[tokens_col]], [_as_list(c) for c in dset[tags_col]]
    if names and all(row is None or all(isinstance(i, int) for i in row) for row in tags):
        for r, row in enumerate(tags):
            if row is not None and any(i is None or not 0 <= i < len(names) for i in row):
                raise InvalidDataError(f"Row {r} has a tag id outside the {len(names)} tags (-1 marks unlabelled tokens).")
        tags = [[names[i] for i in row] if row is not None else None for row in tags]
    return [list(t) if t is not None else None for t in toks], [list(t) if t is not None else None for t in tags]


# ---------------------------------------------------------------------------------------------------
# results and the shared postprocessing path
# ---------------------------------------------------------------------------------------------------
@dataclass
class TaggedWord:
    """One word of the input with its predicted tag and every tag's probability."""

    word: str
    start: int
    end: int
    tag: str
    score: float
    probs: list[float]


@dataclass
class Entity:
    """A span of words with one entity type; `start`/`end` are character offsets into the input."""

    text: str
    label: str
    score: float
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "score": self.score, "start": self.start, "end": self.end}


@dataclass
class TokenTaggingResult:
    """Entities and word tags of one input text."""

    text: str
    entities: list[Entity]
    words: list[TaggedWord]
    windows: int = 1


@dataclass
class TokenTaggingResults(Results):
    """Tagging results for a list of inputs, with the tag order of every word's `probs`."""

    items: list[TokenTaggingResult]
    tags: list[str] = field(default_factory=list)
    grouped: bool = True  # AdaptNLP's `tags` key: entities (True) or every tagged word

    def decisions(self) -> list[str]:
        """Every word's tag, in order, for parity checks."""
        return [w.tag for r in self.items for w in r.words]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: sentences, entities and AdaptNLP's `tags`. Medium adds word-level `tokens`. High adds every tag's
        score per word and the offsets of `tags`. `result[i]` is AdaptNLP's per-text entry (`text`, `entities`)."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "sentences": [r.text for r in self.items],
            "entities": [[e.to_dict() for e in r.entities] for r in self.items],
            "tags": [self._tags(r, level.at_least(DetailLevel.High)) for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            high = level.at_least(DetailLevel.High)
            out["tokens"] = [
                [
                    {
                        "word": w.word,
                        "tag": w.tag,
                        "score": w.score,
                        "start": w.start,
                        "end": w.end,
                        **({"scores": dict(zip(self.tags, w.probs, strict=True))} if high else {}),
                    }
                    for w in r.words
                ]
                for r in self.items
            ]
        if level.at_least(DetailLevel.High):
            out["windows"] = [r.windows for r in self.items]
        return ByInput(out, [_per_text(r) for r in self.items])

    def _tags(self, r: TokenTaggingResult, offsets: bool) -> list[dict[str, Any]]:
        """AdaptNLP's `tags` of one text: `{entity, score, word}` per entity (or per tagged word if not grouped)."""
        if self.grouped:
            spans = [(e.label, e.score, e.text, e.start, e.end) for e in r.entities]
        else:
            spans = [(w.tag, w.score, w.word, w.start, w.end) for w in r.words if _split_tag(w.tag)[1] is not None]
        out = []
        for k, (entity, score, word, start, end) in enumerate(spans):
            tag: dict[str, Any] = {"entity": entity, "score": score, "word": word}
            if not self.grouped:
                tag["index"] = k
            if offsets:
                tag["offsets"] = [start, end]
            out.append(tag)
        return out


def _per_text(r: TokenTaggingResult) -> dict[str, Any]:
    """One text as AdaptNLP's flair tagger gave it: `{text, entities: [{text, start_pos, end_pos, value, ...}]}`."""
    entities = [
        {
            "text": e.text,
            "start_pos": e.start,
            "end_pos": e.end,
            "value": e.label,
            "confidence": e.score,
            "labels": [{"value": e.label, "confidence": e.score}],
        }
        for e in r.entities
    ]
    return {"text": r.text, "entities": entities, "labels": []}


def merge_per_text(results: Sequence[Any]) -> list[list[dict[str, Any]]]:
    """AdaptNLP's `tag_all`: per text, every model's entities by position, one entry per span with each model's
    `value`, `confidence` and `labels` in lists."""
    n = len(results[0]["sentences"]) if results else 0
    merged: list[list[dict[str, Any]]] = []
    for i in range(n):
        spans: dict[tuple[int, int], dict[str, Any]] = {}
        for res in results:
            for e in res[i]["entities"]:
                key = (e["start_pos"], e["end_pos"])
                entry = spans.setdefault(key, {**{k: e[k] for k in ("text", "start_pos", "end_pos")},
                                               "labels": [], "value": [], "confidence": []})
                entry["labels"] += e["labels"]
                entry["value"].append(e["value"])
                entry["confidence"].append(e["confidence"])
        merged.append([spans[k] for k in sorted(spans)])
    return merged


def _split_tag(tag: str) -> tuple[str, str | None]:
    if tag in ("O", "_", "") or tag.startswith("<"):
        return "O", None
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESLU":
        return tag[0], tag[2:]
    return "I", tag  # IO scheme: a bare type continues a span of the same type


def group_entities(text: str, words: Sequence[TaggedWord]) -> list[Entity]:
    """Merge word tags (BIO, BIOES or IO) into entities; a stray I-X starts a new entity, as seqeval does."""
    entities: list[Entity] = []
    span: list[TaggedWord] = []
    kind: str | None = None

    def close() -> None:
        if span and kind:
            start, end = span[0].start, span[-1].end
            score = sum(w.score for w in span) / len(span)
            entities.append(Entity(text[start:end], kind, float(score), int(start), int(end)))

    for w in words:
        prefix, typ = _split_tag(w.tag)
        if typ is None:
            close()
            span, kind = [], None
            continue
        if prefix in "BSU" or typ != kind:
            close()
            span, kind = [w], typ
        else:
            span.append(w)
        if prefix in "ESLU":
            close()
            span, kind = [], None
    close()
    return entities


class AggregationStrategy(ChoiceEnum):
    """How sub-word predictions become word tags and entities: transformers' `aggregation_strategy`, same names.

    A word is a run of sub-words with one tokenizer word id (BERT-style tokenizers split punctuation off).
    - `First` (`"first"`, the default): a word takes the tag and every tag's probability of its first sub-word.
    - `Max` (`"max"`): a word takes those of its sub-word with the highest top score (the first one on a tie).
    - `Average` (`"average"`): a word's probabilities are the mean of its sub-words' probability vectors; its
      tag is their argmax and its score that mean probability.
    - `Simple` (`"simple"`): no word aggregation; every sub-word keeps its own tag, so an entity may begin or end
      inside a word.
    - `PerToken` (`"none"`): every sub-word with its own tag, score and offsets, never grouped: `entities` lists
      each sub-word not tagged O, with its full tag (`B-PER`) as `label`.

    Except with `"none"`, words (sub-words for `"simple"`) are then grouped into entities by their tags (`B-X I-X
    ...` runs; a stray `I-X` starts a new entity) scored by the mean of their words' scores. `start`/`end` are
    always character offsets into the input: a word spans its first sub-word's start to its last one's end.
    Medium's `tokens` lists the words, or the sub-words for `"simple"` and `"none"`. Flair taggers predict whole
    words, so every strategy gives their word tags (`"none"` lists them ungrouped).

    Example:
        >>> EasyTokenTagger().tag_text("Anna visited Kalamazoo", "models/wnut", aggregation_strategy="max")
    """

    PerToken = "none"
    Simple = "simple"
    First = "first"
    Average = "average"
    Max = "max"

    @property
    def per_word(self) -> bool:
        """True when sub-words are merged into words before grouping (first, max, average)."""
        return self.value in ("first", "average", "max")


def _result(text: str, words: list[TaggedWord], windows: int, strategy: AggregationStrategy) -> TokenTaggingResult:
    if strategy == AggregationStrategy.PerToken:
        entities = [Entity(w.word, w.tag, w.score, w.start, w.end) for w in words if _split_tag(w.tag)[1] is not None]
    else:
        entities = group_entities(text, words)
    return TokenTaggingResult(text=text, entities=entities, words=words, windows=windows)


def _tagged(text: str, start: int, end: int, probs: Any, tags: Sequence[str]) -> TaggedWord:
    j = int(probs.argmax())
    return TaggedWord(text[start:end], start, end, tags[j], float(probs[j]), [float(x) for x in probs])


SubWord = tuple[int, int, int, Any]  # (word id, start, end, tag probabilities)


def _sub_words(enc: Any, logits: Sequence[Any], n_texts: int) -> list[list[SubWord]]:
    """Per text, every sub-word in order, each with the probabilities of the window where it sits most centrally
    (farthest from either edge; the first such window on a tie)."""
    import numpy as np

    best: list[dict[tuple[int, int, int, int], tuple[int, Any]]] = [{} for _ in range(n_texts)]
    for k, sid in enumerate(enc.sample_ids):
        wids, offs = enc.word_ids[k], enc.offsets[k]
        probs = softmax(np.asarray(logits[k][: len(wids)]))
        content = [p for p, w in enumerate(wids) if w is not None]
        lo, hi = (content[0], content[-1]) if content else (0, 0)
        repeats: dict[tuple[int, int, int], int] = {}  # sub-words of one word with the same offsets (byte pieces)
        for p, w in enumerate(wids):
            if w is None:
                continue
            start, end = int(offs[p][0]), int(offs[p][1])
            n = repeats[w, start, end] = repeats.get((w, start, end), -1) + 1
            centrality = min(p - lo, hi - p)
            if (w, start, end, n) not in best[sid] or centrality > best[sid][w, start, end, n][0]:
                best[sid][w, start, end, n] = (centrality, probs[p])
    return [[(key[0], key[1], key[2], found[key][1]) for key in sorted(found)] for found in best]


def _aggregate(text: str, pieces: Sequence[SubWord], strategy: AggregationStrategy, tags: Sequence[str]) -> list[TaggedWord]:
    """Word tags from sub-word probabilities by `strategy` (see `AggregationStrategy`); sub-word tags for none/simple."""
    import numpy as np

    if not strategy.per_word:
        return [_tagged(text, start, end, probs, tags) for _, start, end, probs in pieces]
    words: dict[int, list[SubWord]] = {}
    for piece in pieces:
        words.setdefault(piece[0], []).append(piece)
    out = []
    for group in words.values():
        vectors = [piece[3] for piece in group]
        if strategy == AggregationStrategy.First:
            probs = vectors[0]
        elif strategy == AggregationStrategy.Max:
            probs = max(vectors, key=lambda v: v.max())
        else:
            probs = np.mean(vectors, axis=0)
        out.append(_tagged(text, min(p[1] for p in group), max(p[2] for p in group), probs, tags))
    return out


GROUPED = Option("grouped_entities", bool, True, "AdaptNLP's `tags`: one per entity, or one per tagged word", False)
AGGREGATION = Option(
    "aggregation_strategy", AggregationStrategy, AggregationStrategy.First,
    "sub-words to words: first, max or average (then entities); simple: sub-word tags grouped; none: every sub-word",
    "max",
)


@dataclass
class HFTokenTagger:
    """A transformers token classifier with its tag list; `predict` is the one tagging path for HF models."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("max_length", int, None, "tokens per window (default: the trained length)", 64),
        Option("stride", int, None, "overlap of windows in tokens (default: max_length // 4)", 8),
        GROUPED,
        AGGREGATION,
    )

    model: Any
    tokenizer: Any
    tags: list[str]
    max_length: int | None = None

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFTokenTagger:
        id2label = {int(k): v for k, v in (model.config.id2label or {}).items()}
        tags = [str(id2label.get(i, f"LABEL_{i}")) for i in range(model.config.num_labels)]
        return cls(model, tokenizer, tags, max_length=(manifest or {}).get("max_length"))

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        max_length: int | None = None,
        stride: int | None = None,
        grouped_entities: bool = True,
        aggregation_strategy: AggregationStrategy | str = AggregationStrategy.First,
    ) -> TokenTaggingResults:
        """Tag raw texts: overlapping windows over long texts, length-sorted batches, and sub-word predictions made
        word tags by `aggregation_strategy` (first sub-word by default; see `AggregationStrategy`)."""
        strategy = AggregationStrategy(aggregation_strategy)
        if any(not isinstance(t, str) for t in texts):
            raise InvalidInputError("Token tagging takes plain strings, not (text, text_pair) pairs.")
        max_len = resolve_max_length(max_length, self.max_length, model_max_length(self.model, self.tokenizer))
        enc = encode(self.tokenizer, texts, max_len, LongText.Window, stride, return_offsets=True, return_word_ids=True)
        logits = forward_logits(self.model, self.tokenizer, enc, batch_size)
        items = [
            _result(text, _aggregate(text, pieces, strategy, self.tags), enc.n_windows[i], strategy)
            for i, (text, pieces) in enumerate(zip(texts, _sub_words(enc, logits, len(texts)), strict=True))
        ]
        return TokenTaggingResults(items, list(self.tags), grouped_entities)


@dataclass
class FlairTokenTagger:
    """A flair `SequenceTagger` behind the same `predict` interface; its tokens carry character offsets."""

    options: ClassVar[tuple[Option, ...]] = (GROUPED, AGGREGATION)

    model: Any

    @property
    def tags(self) -> list[str]:
        return [t for t in self.model.label_dictionary.get_items() if not t.startswith("<")]

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        grouped_entities: bool = True,
        aggregation_strategy: AggregationStrategy | str = AggregationStrategy.First,
    ) -> TokenTaggingResults:
        """Tag with flair (which sorts by length itself) and read each token's full tag distribution. Flair tags
        whole words, so every `aggregation_strategy` gives the same tags; `"none"` lists them ungrouped."""
        from flair.data import Sentence

        strategy = AggregationStrategy(aggregation_strategy)
        if any(not isinstance(t, str) for t in texts):
            raise InvalidInputError("Token tagging takes plain strings, not (text, text_pair) pairs.")
        tags = self.tags
        sentences = [Sentence(t) for t in texts]
        self.model.predict(
            sentences,
            mini_batch_size=batch_size,
            return_probabilities_for_all_classes=True,
            force_token_predictions=True,
            verbose=False,
        )
        name = self.model.tag_type
        items = []
        for text, sent in zip(texts, sentences, strict=True):
            words = []
            for tok in sent.tokens:
                dist = {lab.value: float(lab.score) for lab in tok.get_tags_proba_dist(name)}
                probs = [dist.get(t, 0.0) for t in tags]
                j = max(range(len(probs)), key=probs.__getitem__)
                start, end = int(tok.start_position), int(tok.end_position)
                words.append(TaggedWord(text[start:end], start, end, tags[j], probs[j], probs))
            items.append(_result(text, words, 1, strategy))
        return TokenTaggingResults(items, tags, grouped_entities)


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
class TagLoss:
    """fastai's flat cross-entropy over tag ids (-100 ignored), and a zero that keeps the graph for a batch with no
    word to tag (windows holding only words an earlier window labelled): PyTorch's mean over no labels is NaN,
    which would poison every weight. A plain class at module level, so `learn.export()` can pickle it."""

    def __init__(self) -> None:
        from fastai.losses import CrossEntropyLossFlat

        self.flat = CrossEntropyLossFlat(axis=-1)

    def __call__(self, inp: Any, targ: Any, **kwargs: Any) -> Any:
        if self.reduction != "mean":  # per token (0 where ignored) or summed: never a division by zero
            return self.flat(inp, targ, **kwargs)
        import torch.nn.functional as F

        flat = targ.reshape(-1)  # the mean over tagged tokens, with no host sync to test for them
        total = F.cross_entropy(inp.reshape(-1, inp.size(-1)), flat, ignore_index=IGNORE, reduction="sum")
        return total / (flat != IGNORE).sum().clamp(min=1)

    @property
    def reduction(self) -> str:
        return str(self.flat.reduction)

    @reduction.setter
    def reduction(self, value: str) -> None:  # fastai's get_preds(with_loss=True) asks for per-item losses
        self.flat.reduction = value

    def activation(self, x: Any) -> Any:
        return self.flat.activation(x)

    def decodes(self, x: Any) -> Any:
        return self.flat.decodes(x)


def _seqeval_metrics(vocab: Sequence[str]) -> list[Any]:
    from fastai.learner import Metric

    class Seqeval(Metric):
        """Entity-level precision, recall or F1 from seqeval over the words of the validation set."""

        def __init__(self, kind: str) -> None:
            self.kind, self.vocab = kind, list(vocab)
            self.reset()

        def reset(self) -> None:
            self.preds: list[list[str]] = []
            self.targs: list[list[str]] = []

        def accumulate(self, learn: Any) -> None:
            pred = learn.pred.argmax(dim=-1).cpu().numpy()
            targ = learn.yb[0].cpu().numpy()
            for p_row, t_row in zip(pred, targ, strict=True):
                keep = t_row != IGNORE
                self.targs.append([self.vocab[i] for i in t_row[keep]])
                self.preds.append([self.vocab[i] for i in p_row[keep]])

        @property
        def value(self) -> float:
            from seqeval import metrics

            if self.kind == "accuracy":  # share of words tagged right
                return float(metrics.accuracy_score(self.targs, self.preds)) if self.targs else 0.0
            fn = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}[self.kind]
            return float(fn(self.targs, self.preds, zero_division=0))

        @property
        def name(self) -> str:
            return self.kind

    return [Seqeval(m.value) for m in NERMetric]


class NERMetric(ChoiceEnum):
    """Metrics of `TokenClassificationTuner(metrics=[...])` by name: word accuracy and seqeval's entity scores."""

    Accuracy = "accuracy"
    Precision = "precision"
    Recall = "recall"
    F1 = "f1"


class TokenClassificationTuner(Tuner):
    """Fine-tune a token classifier (NER) with fastai; seqeval precision/recall/F1 per epoch.

    Example:
        >>> tuner = TokenClassificationTuner(dls, model_path)
        >>> tuner.tune(1, lr=slice(1e-4, 1e-3))
        >>> tuner.predict("Barack Obama visited Paris", detail_level="medium")
    """

    options = (Option("num_classes", int, None, "number of tags (checked against the data)", 3),)
    num_classes: int | None

    def _classes(self, dls: Any) -> list[str]:
        vocab = getattr(dls, "vocab", None)
        if not vocab:
            raise InvalidInputError("Token classification needs dataloaders with a tag vocabulary (TokenClassificationDatasets).")
        if self.num_classes is not None and self.num_classes != len(vocab):
            raise NumClassesError(f"num_classes={self.num_classes}, but the data has {len(vocab)} tags: {list(vocab)}.")
        return [str(v) for v in vocab]

    def default_loss(self) -> Any:
        return TagLoss()

    def default_metrics(self) -> list[Any]:
        return _seqeval_metrics(self.classes)

    def entity_report(self) -> dict[str, dict[str, float]]:
        """seqeval's precision, recall, F1 and support per entity type (and averages) on the validation set."""
        from seqeval.metrics import classification_report

        metric = self._validation_tags()
        report = classification_report(metric.targs, metric.preds, output_dict=True, zero_division=0)
        return {name: {k: float(v) for k, v in row.items()} for name, row in report.items()}

    def _validation_tags(self) -> Any:
        """A seqeval metric holding the validation set's word tags, gold (`targs`) and predicted (`preds`)."""
        metric = _seqeval_metrics(self.classes)[0]
        saved, self.learn.metrics = self.learn.metrics, [metric]
        try:
            from ..engine import without_progress

            with without_progress(self.learn):
                self.learn.validate()
        finally:
            self.learn.metrics = saved
        return metric

    def _learning_warning(self) -> str | None:
        metric = self._validation_tags()
        tagged = {t for row in metric.preds for t in row if _split_tag(t)[1] is not None}
        gold = sum(1 for row in metric.targs for t in row if _split_tag(t)[1] is not None)
        if tagged or not gold:
            return None
        return (f"The tagger predicts no entity in any of the {len(metric.preds)} validation windows (which hold "
                f"{gold} tagged words): it has learned only 'O'. Try a higher learning rate for the head "
                "(lr=slice(1e-4, 1e-3)), more epochs, or label_all_subwords=True.")

    def plot_entity_f1(self, path: str | os.PathLike[str] | None = None) -> Any:
        """A bar chart of F1 per entity type on the validation set, as a matplotlib Figure; `path=` saves it."""
        from ..plots import entity_f1_figure, save_figure

        return save_figure(entity_f1_figure(self.entity_report()), path)


# ---------------------------------------------------------------------------------------------------
# Easy module and the task declaration
# ---------------------------------------------------------------------------------------------------
class EasyTokenTagger(EasyBase):
    """Tag entities with any saved HF token classifier (adapt, plain transformers, hub) or a flair `SequenceTagger` `.pt`.

    `tag_text(text, model_name_or_path, mini_batch_size=32, detail_level="low", max_length=None, stride=None,
    aggregation_strategy="first")` takes one string or a list and returns `{"sentences", "entities"}` (plus
    word-level `tokens` at Medium and every tag's score per word at High), lists of length 1 for one string; entity
    `start`/`end` are character offsets into the input. Long texts are tagged in overlapping windows.
    `aggregation_strategy` turns sub-word predictions into words: `"first"`, `"max"` or `"average"` sub-word,
    `"simple"` (sub-word tags grouped as they are) or `"none"` (every sub-word, ungrouped); see `AggregationStrategy`.

    Example:
        >>> EasyTokenTagger().tag_text("Barack Obama visited Paris", "models/wnut", detail_level="medium")
    """


    def tag_all(
        self, text: Any, mini_batch_size: int = 32, detail_level: DetailLevel | str = DetailLevel.Low, **options: Any
    ) -> dict[str, Any]:
        """`{model: result}` for every model loaded so far; `result[i]` merges text `i`'s entities of all models."""
        out = super().tag_all(text, mini_batch_size, detail_level, **options)
        return ByInput(out, merge_per_text(list(out.values())))


TASKS = (
    TaskSpec(
        name=TASK,
        summary="tag the words of a text (named entities, BIO/BIOES/IO tags)",
        aliases=("ner", "token_tagging", "tagging"),
        datasets=TokenClassificationDatasets,
        tuner=TokenClassificationTuner,
        easy=EasyTokenTagger,
        predictor=HFTokenTagger,
        fields=TEXT,
        auto_class="AutoModelForTokenClassification",
        pipeline_tag="token-classification",
        heads=("ForTokenClassification",),
        metrics=("accuracy", "precision", "recall", "f1"),
        fast_copies=frozenset({"int8", "onnx"}),
        flair="SequenceTagger",
        exports=("NERMetric", "AggregationStrategy"),
        flair_predictor=FlairTokenTagger,
        data_forms=("conll", "jsonl"),
    ),
)
