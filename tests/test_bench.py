"""The benchmark suite runs (at a tiny size; benchmarks are never timed in tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_tiny(script: str, tmp_path):
    """`bench/<script> --tiny`: (its JSON results, the finished process)."""
    out = tmp_path / "results.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def test_bench_runs_tiny(tmp_path):
    res, proc = _run_tiny("run.py", tmp_path)
    rows = res["inference"]
    assert {r["workload"] for r in rows} == {"long", "short", "mixed"}
    assert {r["runner"] for r in rows} >= {"adapt fp32", "adapt int8 (export quantize=True)", "adapt ONNX int8 (export onnx=True)", "hand-sorted loop fp32"}
    assert all(r["texts_per_s"] > 0 for r in rows) and res["peak_rss_mb"] > 0
    assert {r["runner"] for r in res["training"]} == {
        "raw PyTorch loop", "HF Trainer", "adapt Tuner", "adapt Tuner group_by_length"}
    assert {r["workload"] for r in res["training"]} == {"long", "mixed"}
    assert all(r["samples_per_s"] > 0 for r in res["training"]) and all(r["words_per_s"] > 0 for r in res["ner"])
    start = res["startup"]
    assert 0 < start["import_adapt_s"] < start["cold_adapt_predict_s"] and start["cold_pipeline_script_s"] > 0
    assert "vs_sorted_loop" in proc.stdout and "vs_trainer" in proc.stdout


def test_efficient_fine_tuning_bench_runs_tiny(tmp_path):
    res, proc = _run_tiny("efficient.py", tmp_path)
    assert set(res["configs"]) == {"full", "lora", "batch16", "batch4x4"}
    assert all(r["samples_per_s"] > 0 and r["peak_rss_mb"] > 0 for r in res["configs"].values())
    assert res["lora_vs_full"]["trainable_share_pct"] < 1 and res["lora_vs_full"]["saved_size_share_pct"] < 2
    assert res["accumulation"]["steps"][0] == res["accumulation"]["steps"][1] > 0  # one step per 16 samples both ways
    assert "lora_vs_full" in proc.stdout


def test_defaults_bench_runs_tiny(tmp_path):
    """bench/defaults.py: adapt's default path against the HF Trainer's defaults on three data-set shapes."""
    res, proc = _run_tiny("defaults.py", tmp_path)
    assert {r["data"] for r in res["rows"]} == {"topics", "binary", "imbalanced3"}
    assert {r["runner"] for r in res["rows"]} == {"adapt default", "HF Trainer default"}
    assert all(0 <= r["macro_f1"] <= 1 and 0 <= r["majority_f1"] <= 1 for r in res["rows"])
    assert "majority baseline" in proc.stdout and "HF Trainer default" in proc.stdout
