"""Small synthetic tasks built from your own documents, for offline tests, demos and pipeline smoke checks.

- `synthetic_qa`: SQuAD-style questions whose answers are names or numbers from the middle of the text, at varied
  positions, plus unanswerable questions (SQuAD v2 style). A question is a sentence of the context with the
  answer replaced by a question word, so a model must find the sentence and read the missing span.
- `cipher_translation`: a deterministic "translation" a tiny model learns quickly: each of the most frequent words
  is replaced by another frequent word (a fixed substitution cipher), every other word is copied (as names are in
  real translation).
- `split_sentences`: the simple sentence splitter both use.

Pure Python; nothing heavy is imported.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["cipher_lexicon", "cipher_translation", "split_sentences", "synthetic_qa"]

_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_NUMBER = re.compile(r"(?:[£$€])?\d[\d,.]*\d?(?:%| ?(?:bn|m|million|billion|per cent))?")
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}")


def split_sentences(text: str, min_words: int = 6, max_words: int = 40) -> list[str]:
    """Sentences of `text` (whitespace normalised) with `min_words`..`max_words` words."""
    flat = " ".join(text.split())
    return [s for s in _SENT_END.split(flat) if min_words <= len(s.split()) <= max_words]


def _spans(sentence: str) -> list[tuple[int, int, str]]:
    """Candidate answers in a sentence: numbers and mid-sentence capitalised names, as (start, end, question word)."""
    out = [(m.start(), m.end(), "how much") for m in _NUMBER.finditer(sentence) if m.start() > 0]
    out += [(m.start(), m.end(), "who or what") for m in _NAME.finditer(sentence)]
    return out


def _question(sentence: str, start: int, end: int, wh: str) -> str:
    return (sentence[:start] + wh + sentence[end:]).rstrip(" .!") + "?"


def synthetic_qa(
    documents: Iterable[str],
    questions_per_doc: int = 2,
    unanswerable: float = 0.2,
    context_sentences: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """SQuAD-style records `{id, question, context, answers: {text, answer_start}}` from `documents`.

    Each context is `context_sentences` consecutive sentences; the answer sentence sits at a random place among
    them and the answer (a number or a name, never the first word) anywhere in it. About `unanswerable` of the
    questions are asked of a context from another document and have no answer (`answers` lists are empty).
    """
    rng = random.Random(seed)
    docs = [split_sentences(d) for d in documents]
    docs = [d for d in docs if len(d) >= context_sentences]
    pool = [(i, k, sp) for i, d in enumerate(docs) for k, s in enumerate(d) for sp in _spans(s)]
    by_doc: dict[int, list[tuple[int, tuple[int, int, str]]]] = {}
    for i, k, sp in pool:
        by_doc.setdefault(i, []).append((k, sp))
    rows: list[dict[str, Any]] = []
    for i, sents in enumerate(docs):
        picks = rng.sample(by_doc.get(i, []), k=min(questions_per_doc, len(by_doc.get(i, []))))
        for k, (s, e, wh) in picks:
            first = rng.randint(max(0, k - context_sentences + 1), min(k, len(sents) - context_sentences))
            window = sents[first : first + context_sentences]
            context = " ".join(window)
            offset = sum(len(x) + 1 for x in window[: k - first])
            others = [j for j in by_doc if j != i]
            if others and rng.random() < unanswerable:  # the question of another document: no answer here
                j = rng.choice(others)
                kk, (s2, e2, wh2) = rng.choice(by_doc[j])
                question = _question(docs[j][kk], s2, e2, wh2)
                answers: dict[str, list[Any]] = {"text": [], "answer_start": []}
            else:
                question = _question(sents[k], s, e, wh)
                answers = {"text": [sents[k][s:e]], "answer_start": [offset + s]}
            rows.append({"id": f"{i}-{len(rows)}", "question": question, "context": context, "answers": answers})
    return rows


def cipher_lexicon(sentences: Sequence[str], n_words: int = 300, seed: int = 0) -> dict[str, str]:
    """A seeded shuffle of the `n_words` most frequent lower-case words (2+ letters): each maps to another of them."""
    counts = Counter(w for s in sentences for w in s.lower().split() if w.isalpha() and len(w) > 1)
    words = [w for w, _ in counts.most_common(n_words)]
    random.Random(seed).shuffle(words)
    return {w: words[(k + 1) % len(words)] for k, w in enumerate(words)}  # one cycle: a bijection, no fixed point


def cipher_translation(
    sentences: Sequence[str], lexicon: dict[str, str] | None = None, n_words: int = 300
) -> list[dict[str, str]]:
    """`{source, target}` pairs: the lower-cased source, and the target with every lexicon word substituted."""
    lex = cipher_lexicon(sentences, n_words) if lexicon is None else lexicon
    rows = []
    for s in sentences:
        src = " ".join(s.lower().split())
        rows.append({"source": src, "target": " ".join(lex.get(w, w) for w in src.split())})
    return rows
