"""The `adapt` command line: help, predict, tune, export."""
from __future__ import annotations

import json
import os
import subprocess
import sys


from adapt import EasySequenceClassifier

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def adapt_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "adapt.cli", *args], capture_output=True, text=True, env=ENV, timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"adapt {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def test_help_is_useful():
    top = adapt_cli("--help").stdout
    for cmd in ("serve", "predict", "tune", "export"):
        assert cmd in top
        sub = adapt_cli(cmd, "--help").stdout
        assert "Usage" in sub and len(sub) > 200
    assert "--max-batch-size" in adapt_cli("serve", "--help").stdout


def test_predict_args_and_file_give_json_lines(saved_dir, tmp_path):
    texts = ["Shares fell sharply after the profit warning", "The striker scored twice"]
    out = adapt_cli("predict", str(saved_dir), *texts, "--detail-level", "medium").stdout.splitlines()
    rows = [json.loads(line) for line in out]
    expected = EasySequenceClassifier().tag_text(texts, saved_dir)
    assert [r["predictions"][0] for r in rows] == expected["predictions"] and "pairings" in rows[0]
    f = tmp_path / "texts.txt"
    f.write_text("\n".join(texts) + "\n\n")
    rows_f = [json.loads(line) for line in adapt_cli("predict", str(saved_dir), "--file", str(f)).stdout.splitlines()]
    assert [r["predictions"][0] for r in rows_f] == expected["predictions"]


def test_predict_bad_path_is_a_clear_error(tmp_path):
    out = adapt_cli("predict", str(tmp_path / "missing"), "hello", check=False)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_predict_never_imports_fastai_or_flair(saved_dir):
    code = (
        "import sys\nfrom adapt.cli import app\n"
        "try:\n    app(['predict', sys.argv[1], 'a goal in the match'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('fastai', 'flair') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(saved_dir)], capture_output=True, text=True, env=ENV, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tune_csv_then_export(tmp_path, bbc_df, model_path):
    df = bbc_df.groupby("label").head(8).assign(text=lambda d: d.text.str.slice(0, 300))
    csv = tmp_path / "train.csv"
    df[["text", "label"]].to_csv(csv, index=False)
    out = tmp_path / "model"
    res = adapt_cli("tune", str(csv), "--out", str(out), "--model", model_path, "--epochs", "1", "--lr", "1e-4",
                    "--max-length", "32", "--batch-size", "8")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["saved"] == str(out) and "accuracy" in summary["metrics"]
    manifest = json.loads((out / "adapt.json").read_text())
    assert manifest["labels"] == sorted(df.label.unique()) and manifest["max_length"] == 32
    exported = tmp_path / "exported"
    adapt_cli("export", str(out), str(exported))
    assert (exported / "README.md").exists() and (exported / "model.safetensors").exists()
    assert EasySequenceClassifier().tag_text("stocks", exported)["predictions"][0] in manifest["labels"]
    (out / "model.safetensors").write_bytes(b"corrupt")
    bad = adapt_cli("export", str(out), str(tmp_path / "again"), check=False)
    assert bad.returncode == 2 and "checksum" in bad.stderr and not (tmp_path / "again").exists()
