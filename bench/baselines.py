"""Frozen reference implementations the benchmarks compare adapt against. Do not optimise these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

MAX_LENGTH = 256
BATCH = 32


def load(model_dir: Path) -> dict[str, Any]:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    return {"model": model, "tokenizer": tok, "pipe": pipeline("text-classification", model=model, tokenizer=tok, device=-1)}


def pipeline_predict(ref: dict[str, Any], texts: list[str]) -> list[Any]:
    """transformers' pipeline, batched, with truncation (without it texts over 512 tokens crash)."""
    return ref["pipe"](texts, batch_size=BATCH, truncation=True, max_length=MAX_LENGTH)


@torch.inference_mode()
def sorted_loop_predict(ref: dict[str, Any], texts: list[str]) -> list[int]:
    """A hand-written loop: sort by length, pad per batch, argmax."""
    model, tok = ref["model"], ref["tokenizer"]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = [0] * len(texts)
    for s in range(0, len(order), BATCH):
        idx = order[s : s + BATCH]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        pred = model(**enc).logits.argmax(-1).tolist()
        for i, p in zip(idx, pred, strict=True):
            out[i] = p
    return out
