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


# -- training references: same data, batch size, max_length, optimizer (AdamW, constant LR) and dynamic padding --

def tokenized(tok: Any, texts: list[str], labels: list[int], max_length: int) -> list[dict[str, Any]]:
    enc = tok(texts, truncation=True, max_length=max_length)
    return [{**{k: enc[k][i] for k in enc}, "labels": labels[i]} for i in range(len(texts))]


def raw_train(model: Any, tok: Any, rows: list[dict[str, Any]], batch: int, lr: float) -> float:
    """A plain PyTorch loop: shuffled DataLoader, DataCollatorWithPadding, AdamW; returns seconds for one epoch."""
    import time

    from transformers import DataCollatorWithPadding

    torch.manual_seed(0)
    dl = torch.utils.data.DataLoader(rows, batch_size=batch, shuffle=True, collate_fn=DataCollatorWithPadding(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    t = time.perf_counter()
    for b in dl:
        loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t


def trainer_train(model: Any, tok: Any, rows: list[dict[str, Any]], batch: int, lr: float, out_dir: str) -> float:
    """transformers.Trainer with its defaults apart from batch, LR (constant) and no saving/eval/logging."""
    import time

    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=batch, learning_rate=lr, num_train_epochs=1,
        lr_scheduler_type="constant", warmup_steps=0, save_strategy="no", eval_strategy="no", logging_strategy="no",
        report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    t = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t


# -- NER reference -------------------------------------------------------------------------------------------

def ner_pipeline(model_dir: Path) -> Any:
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    return pipeline("token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(model_dir),
                    aggregation_strategy="simple", device=-1)


def ner_pipeline_predict(pipe: Any, texts: list[str]) -> list[Any]:
    return pipe(texts, batch_size=BATCH)
