"""Executable documentation: the tutorial notebooks, the demo script and README's Quick tour, at tiny budgets.

Each test runs its document in a fresh process (a Jupyter kernel or a subprocess) with environment variables
that shrink the run (40 documents or 120 tweets, 1 epoch, 32-64 tokens), fully offline, and checks what it
prints and leaves behind. Select them with `pytest -m docs`; skip them with `-m "not docs"`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .readme_utils import readme_blocks, rewrite, run_shell, section_blocks

pytestmark = [pytest.mark.docs, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "nbs" / "01_sequence_classification.ipynb"
NER_NOTEBOOK = ROOT / "nbs" / "02_token_classification.ipynb"
LM_NOTEBOOK = ROOT / "nbs" / "03_language_models.ipynb"
READING_NOTEBOOK = ROOT / "nbs" / "04_qa_summarization_translation.ipynb"
EFFICIENT_NOTEBOOK = ROOT / "nbs" / "05_efficient_fine_tuning.ipynb"
FASTAI_NOTEBOOK = ROOT / "nbs" / "06_fastai_datablock.ipynb"
DEMO = ROOT / "examples" / "demo.py"
LABELS = ["business", "entertainment", "politics", "sports", "tech"]
TIMEOUT = 300  # seconds per notebook cell / subprocess

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _tiny_env(**budget: str) -> dict[str, str]:
    return {**os.environ, **OFFLINE, **budget}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[:2])} exited with {proc.returncode}\n--- stdout (tail) ---\n{proc.stdout[-3000:]}"
            f"\n--- stderr (tail) ---\n{proc.stderr[-5000:]}"
        )
    return proc


# ---------------------------------------------------------------------------------------------------
# the tutorial notebook
# ---------------------------------------------------------------------------------------------------
def _cell_text(cell: dict) -> str:
    """Everything a code cell showed: streams, plain-text, HTML and markdown renderings."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _execute_notebook(
    path: Path, budget: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_code: str | None = None
):
    """Check the notebook is committed clean, then execute it in a fresh kernel with the tiny `budget` env vars.

    `extra_code` runs as one more cell at the end (not saved), e.g. to print the kernel's variables as JSON.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    committed = path.read_bytes()
    raw = nbformat.read(path, as_version=4)
    code = [c for c in raw.cells if c.cell_type == "code"]
    unrun = [c.get("id") for c in code if not c.get("execution_count")]
    assert not unrun, f"commit the notebook executed, with its outputs (python scripts/run_notebooks.py); not run: {unrun}"
    for cell in code:  # the scratch copy starts clean, so its outputs are this run's
        cell.outputs, cell.execution_count = [], None
    assert "parameters" in raw.cells[1].metadata.get("tags", []), "the first code cell should be tagged 'parameters'"
    if extra_code is not None:
        raw.cells.append(nbformat.v4.new_code_cell(extra_code, id="test-extra"))

    for key, value in _tiny_env(**budget).items():  # the kernel inherits this process's environment
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)

    client = nbclient.NotebookClient(raw, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert path.read_bytes() == committed, "executing the notebook must not rewrite the committed file"
    return raw


def _committed_images(path: Path) -> dict[str, int]:
    """Cell id -> number of PNG images that cell shows in the committed notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return {
        c.get("id"): sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
        for c in nb["cells"] if c["cell_type"] == "code"
    }


@pytest.mark.parametrize("path", [NOTEBOOK, NER_NOTEBOOK, LM_NOTEBOOK, READING_NOTEBOOK, EFFICIENT_NOTEBOOK,
                                  FASTAI_NOTEBOOK],
                         ids=lambda p: p.stem)
def test_notebooks_are_committed_with_outputs_and_plots(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name}: every code cell should be committed executed"
    counts = [c["execution_count"] for c in code]
    assert counts == sorted(counts) and counts[0] == 1, f"{path.name}: run top to bottom in one fresh kernel"
    shown = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in shown if o.get("output_type") == "error"], f"{path.name} was committed with an error"
    assert len([c for c in code if c.get("outputs")]) >= len(code) // 2, f"{path.name}: most cells should show output"
    assert not [c for c in code if "execution" in c.get("metadata", {})], f"{path.name}: clean the run timestamps"
    plots = {NOTEBOOK: ("lr-find", "plot-loss", "confusion-matrix"), NER_NOTEBOOK: ("plot-loss", "entity-f1"),
             EFFICIENT_NOTEBOOK: ("plot-loss",), FASTAI_NOTEBOOK: ("lr-find", "plot-loss")}
    for cell in plots.get(path, ()):
        assert _committed_images(path).get(cell, 0) >= 1, f"{path.name}: the {cell!r} plot is missing"


def test_tutorial_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {
        "ADAPT_NB_DOCS": "40",
        "ADAPT_NB_EPOCHS": "1",
        "ADAPT_NB_MAX_LENGTH": "32",
        "ADAPT_NB_LR_FIND_ITERS": "10",
        "ADAPT_NB_OUT": str(tmp_path / "bbc-tutorial"),
    }
    raw = _execute_notebook(NOTEBOOK, budget, tmp_path, monkeypatch)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}

    for cid in ("labels", "datasets", "tuner", "hf"):
        for label in LABELS:
            assert label in out[cid], f"cell {cid!r} should show label {label!r}:\n{out[cid][:2000]}"
    assert "SequenceClassificationDatasets(train=32, valid=8" in out["datasets"]
    assert "labels" in out["show-batch"] and "input_ids" in out["show-batch"]
    assert re.search(r"raw \S+ -> chosen \S+", out["lr-find"]), out["lr-find"][-2000:]
    assert "train_loss" in out["tune"] and "'accuracy'" in out["tune"]
    assert "accuracy" in out["evaluate"] and "f1_macro" in out["evaluate"]
    assert "'pairings'" in out["predict"] and "'classes'" in out["predict"]
    assert "adapt.json" in out["save"] and "'sequence_classification'" in out["save"]
    assert out["easy"].rstrip().endswith("True"), f"reloaded predictions differ from the tuner's:\n{out['easy']}"
    assert out["serve"].rstrip().endswith("True"), f"the server's answers differ from Easy's:\n{out['serve']}"
    images = {c.id: sum("image/png" in o.get("data", {}) for o in c.outputs) for c in raw.cells if c.cell_type == "code"}
    assert all(images[cid] == 1 for cid in ("lr-find", "plot-loss", "confusion-matrix")), images

    windows = re.search(r"window:\s+\[.*?\] windows: \[(\d+)\] truncated: \[False\]", out["window"])
    assert windows and int(windows.group(1)) > 1, out["window"]
    assert re.search(r"truncate: \[.*?\] windows: \[1\] truncated: \[True\]", out["window"]), out["window"]
    assert (tmp_path / "bbc-tutorial" / "adapt.json").is_file()


def test_efficient_fine_tuning_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {"ADAPT_NB_DOCS": "40", "ADAPT_NB_EPOCHS": "2", "ADAPT_NB_MAX_LENGTH": "32",
              "ADAPT_NB_OUT": str(tmp_path / "efficient")}
    raw = _execute_notebook(EFFICIENT_NOTEBOOK, budget, tmp_path, monkeypatch)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}
    assert "'type': 'LORA'" in out["lora"] and "adapter_model.safetensors" in out["lora"]
    assert "trainable params" in out["compare"] and "LoRA" in out["compare"] and "saved folder (MB)" in out["compare"]
    assert out["adapter"].rstrip().endswith("True") and "] True" in out["adapter"], out["adapter"]
    assert re.search(r"ran \d of 4 epochs; kept epoch \d", out["early-stopping"]), out["early-stopping"]
    assert "interrupted after epoch 1" in out["resume"], out["resume"]
    assert out["resume"].rstrip().endswith("resumed run equals the uninterrupted one: True"), out["resume"][-2000:]
    images = {c.id: sum("image/png" in o.get("data", {}) for o in c.outputs) for c in raw.cells if c.cell_type == "code"}
    assert images["plot-loss"] == 1, images
    adapter = tmp_path / "efficient" / "bbc-lora"
    assert (adapter / "adapter_model.safetensors").stat().st_size < 0.05 * (
        tmp_path / "efficient" / "bbc-full" / "model.safetensors").stat().st_size


def test_fastai_datablock_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {"ADAPT_NB_DOCS": "40", "ADAPT_NB_EPOCHS": "1", "ADAPT_NB_MAX_LENGTH": "32", "ADAPT_NB_LR_FIND_ITERS": "10",
              "ADAPT_NB_OUT": str(tmp_path / "bbc-fastai")}
    raw = _execute_notebook(FASTAI_NOTEBOOK, budget, tmp_path, monkeypatch)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}

    assert "40 articles, 10 for validation" in out["data"], out["data"][:2000]
    assert "30 training and 10 validation rows" in out["datablock"] and str(LABELS) in out["datablock"]
    assert "labels" in out["show-batch"] and any(label in out["show-batch"] for label in LABELS), out["show-batch"][:2000]
    assert re.search(r"minimum/10 \S+, steep \S+, valley \S+; base_lr", out["lr-find"]), out["lr-find"][-2000:]
    assert "train_loss" in out["fine-tune"] and "accuracy" in out["fine-tune"]
    assert "predicted labels" in out["show-results"], out["show-results"][-2000:]
    assert "'predictions'" in out["predict"] and "'probs'" in out["predict"]
    assert "adapt.json" in out["save"] and "model.safetensors" in out["save"] and "README.md" in out["save"]
    assert "'sequence_classification'" in out["save"] and "'max_length': 32" in out["save"]
    assert out["easy"].rstrip().endswith("True"), f"Easy's predictions differ from the Learner's:\n{out['easy']}"
    assert out["serve"].rstrip().endswith("True"), f"the server's answers differ from Easy's:\n{out['serve']}"
    images = {c.id: sum("image/png" in o.get("data", {}) for o in c.outputs) for c in raw.cells if c.cell_type == "code"}
    assert images["lr-find"] == 1 and images["plot-loss"] == 1, images
    assert (tmp_path / "bbc-fastai" / "adapt.json").is_file()


_NER_STATE = r"""
import json
print("@@STATE@@" + json.dumps({
    "texts": texts, "preds": preds, "reloaded": reloaded, "manifest": manifest, "saved": str(saved),
    "long_text": long_text, "whole": whole, "one": one, "id2label": hf_model.config.id2label,
}))
"""


def test_token_classification_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {
        "ADAPT_NB_SENTENCES": "120",
        "ADAPT_NB_EPOCHS": "1",
        "ADAPT_NB_MAX_LENGTH": "64",
        "ADAPT_NB_BATCH_SIZE": "8",
        "ADAPT_NB_NER_OUT": str(tmp_path / "wnut-tutorial"),
    }
    raw = _execute_notebook(NER_NOTEBOOK, budget, tmp_path, monkeypatch, extra_code=_NER_STATE)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}
    state = json.loads(out["test-extra"].rpartition("@@STATE@@")[2])

    # data, show_batch, training table and evaluation
    assert "2394 tweets" in out["data"] and "'person'" in out["data"], out["data"][:2000]
    assert "TokenClassificationDatasets(train=96, valid=24" in out["datasets"], out["datasets"][:2000]
    assert "tagged words" in out["show-batch"] and "labels" in out["show-batch"]
    assert re.search(r"\S\[[BI]-[a-z-]+\]", out["show-batch"]), "show_batch should show words as word[TAG]"
    for name in ("train_loss", "valid_loss", "precision", "recall", "f1"):
        assert name in out["tune"], f"{name!r} missing from the training table:\n{out['tune'][-2000:]}"
    assert "'f1'" in out["evaluate"] and "'precision'" in out["evaluate"] and "'recall'" in out["evaluate"]

    # the tag vocabulary: BIO tags of WNUT's ten types, in config.id2label and adapt.json alike
    id2label = {int(k): v for k, v in state["id2label"].items()}
    tags = [id2label[i] for i in range(len(id2label))]
    assert tags == state["manifest"]["labels"] and "O" in tags
    assert all(t == "O" or t[:2] in ("B-", "I-") for t in tags)
    assert {t[2:] for t in tags if t.startswith("B-")} >= {"person", "geo-loc", "company"}
    assert state["manifest"]["task"] == "token_classification" and state["manifest"]["max_length"] == 64
    assert {"adapt.json", "config.json", "model.safetensors"} <= {p.name for p in Path(state["saved"]).iterdir()}

    # predictions: one entry per text, entities and words with character offsets into the input
    texts, preds = state["texts"], state["preds"]
    assert set(preds) == {"sentences", "entities", "tokens", "tags"} and preds["sentences"] == texts
    assert len(preds["entities"]) == len(preds["tokens"]) == len(texts)
    for text, entities, words in zip(texts, preds["entities"], preds["tokens"], strict=True):
        for e in entities:  # the tiny model may find none; the full-size run does
            assert set(e) == {"text", "label", "score", "start", "end"} and e["label"] in {t[2:] for t in tags}
            assert text[e["start"] : e["end"]] == e["text"]
        assert [text[w["start"] : w["end"]] for w in words] == [w["word"] for w in words]
        assert all(w["tag"] in tags and 0.0 <= w["score"] <= 1.0 for w in words)
        assert "".join(w["word"] for w in words) == "".join(text.split())  # every character of every word, in order
    assert out["easy"].rstrip().endswith("True"), f"EasyTokenTagger differs from tuner.predict:\n{out['easy']}"
    assert state["reloaded"]["entities"] == preds["entities"]

    # the long text: many windows, every word of every copy tagged, exact offsets
    long_text, whole, one = state["long_text"], state["whole"], state["one"]
    assert whole["windows"][0] > 1 and len(long_text.split()) == 100 * len(texts[0].split())
    words = whole["tokens"][0]
    assert [w["word"] for w in words] == [w["word"] for w in one] * 100
    assert [long_text[w["start"] : w["end"]] for w in words] == [w["word"] for w in words]
    assert words[-1]["end"] == len(long_text) and set(words[0]["scores"]) == set(tags)
    for e in whole["entities"][0]:
        assert long_text[e["start"] : e["end"]] == e["text"]
    assert "same words as 100 copies: True" in out["long"] and "offsets exact: True" in out["long"], out["long"]


def test_language_model_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {
        "ADAPT_NB_LM_DOCS": "120",
        "ADAPT_NB_LM_EPOCHS": "1",
        "ADAPT_NB_BLOCK_SIZE": "64",
        "ADAPT_NB_MLM_DOCS": "12",
        "ADAPT_NB_LM_OUT": str(tmp_path / "lm-tutorial"),
    }
    raw = _execute_notebook(LM_NOTEBOOK, budget, tmp_path, monkeypatch)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}

    assert "120 articles" in out["data"]
    assert "config.json" in out["tiny"] and "tokenizer.json" in out["tiny"]
    assert "LanguageModelDatasets(causal, block_size=64" in out["causal-datasets"] and "n_tokens" in out["causal-datasets"]
    assert "perplexity" in out["causal-tune"] and "perplexity fell: True" in out["causal-tune"], out["causal-tune"][-2000:]
    assert "'generated_text'" in out["generate"]
    assert "sampling reproducible with a seed: True" in out["generate"] and "batched == one by one: True" in out["generate"]
    assert "'token_scores'" in out["generate-high"] and "'token_ids'" in out["generate-high"]
    assert "'generated_text'" in out["generate-empty"]
    assert "LanguageModelDatasets(masked" in out["mlm-datasets"] and "[[" in out["mlm-datasets"]
    assert "masked-LM loss fell: True" in out["mlm-tune"], out["mlm-tune"][-2000:]
    assert "Shares [MASK] sharply on Monday. -> [[(" in out["fill-mask"]
    assert "(7, 384)" in out["embeddings"] or ", 384)" in out["embeddings"]
    assert ", 512)" in out["embeddings"] and "cosine similarity" in out["embeddings"]
    assert (tmp_path / "lm-tutorial" / "bbc-gpt2" / "adapt.json").is_file()


def test_qa_summarization_translation_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = {
        "ADAPT_NB_QA_DOCS": "40",
        "ADAPT_NB_QA_EPOCHS": "1",
        "ADAPT_NB_SUM_EPOCHS": "2",
        "ADAPT_NB_B2B_DOCS": "8",
        "ADAPT_NB_TR_SENTS": "200",
        "ADAPT_NB_TR_EPOCHS": "2",
        "ADAPT_NB_S2S_OUT": str(tmp_path / "reading"),
    }
    raw = _execute_notebook(READING_NOTEBOOK, budget, tmp_path, monkeypatch)
    out = {c.id: _cell_text(c) for c in raw.cells if c.cell_type == "code"}

    assert re.search(r"\d+ questions, \d+ unanswerable", out["qa-data"]) and "'answer_start'" in out["qa-data"]
    assert "QuestionAnsweringDatasets(train=" in out["qa-datasets"] and "window" in out["qa-datasets"]
    assert "exact_match" in out["qa-tune"] and "F1 rose: True" in out["qa-tune"], out["qa-tune"][-2000:]
    assert "'no_answer'" in out["qa-predict"] and "'start'" in out["qa-predict"]
    assert re.search(r"windows read: (\d+)", out["qa-long"]) and int(re.search(r"windows read: (\d+)", out["qa-long"])[1]) > 10
    assert "100 training and 50 validation papers" in out["sum-data"]
    assert "rouge1" in out["sum-tune"] and "validation loss fell: True" in out["sum-tune"], out["sum-tune"][-2000:]
    assert "'summaries'" in out["sum-predict"] and "reference:" in out["sum-predict"]
    assert "EncoderDecoderModel" in out["bert2bert"] and "BERT2BERT validation loss:" in out["bert2bert"]
    assert "200 sentence pairs" in out["tr-data"] and "BLEU before:" in out["tr-tune"]
    assert out["tr-predict"].count("-> ") == 3
    for name in ("bbc-qa", "aclsum-tiny", "cipher"):
        assert (tmp_path / "reading" / name / "adapt.json").is_file()


def test_readme_qa_summarization_translation_run(tmp_path: Path) -> None:
    blocks = section_blocks("Question answering, summarization and translation", "python")
    assert len(blocks) == 2, f"expected the section's two python blocks, found {len(blocks)}"
    env = _tiny_env(ADAPT_README_QA_DOCS="30", ADAPT_README_QA_EPOCHS="1", ADAPT_README_TR_EPOCHS="1")
    proc = _run([sys.executable, "-c", _README_DRIVER], cwd=tmp_path, env=env, stdin=json.dumps(blocks))
    printed, _, tail = proc.stdout.rpartition("@@NAMESPACE@@")
    ns = json.loads(tail)

    assert ns["QA_DOCS"] == 30 and ns["QA_EPOCHS"] == 1 and ns["TR_EPOCHS"] == 1
    assert "exact_match" in printed and set(ns["qa_scores"]) == {"valid_loss", "exact_match", "f1"}
    assert set(ns["answer"]["answers"][0]) == {"answer", "score", "start", "end", "no_answer"}
    assert len(ns["answer"]["best_n"][0]) <= 3
    assert "bleu" in printed and len(ns["translations"]["translations"]) == 2
    assert "rouge1" in printed and len(ns["summaries"]["summaries"]) == 1
    for folder in ("bbc-qa", "tiny-bart", "cipher", "headlines"):
        assert (tmp_path / "models" / folder / "config.json").is_file()


# ---------------------------------------------------------------------------------------------------
# the demo script
# ---------------------------------------------------------------------------------------------------
def test_demo_script_runs(tmp_path: Path) -> None:
    out_dir = tmp_path / "bbc-demo"
    env = _tiny_env(ADAPT_DEMO_DOCS="40", ADAPT_DEMO_EPOCHS="1", ADAPT_DEMO_MAX_LENGTH="32")
    proc = _run([sys.executable, str(DEMO), "--out", str(out_dir)], cwd=tmp_path, env=env)
    stdout = proc.stdout

    assert "40 BBC docs, 1 epoch(s), max_length 32" in stdout  # the env budget reached argparse's defaults
    assert "train_loss" in stdout and "valid_loss" in stdout  # fastai's per-epoch metrics table
    assert re.search(r"validation accuracy: [01]\.\d{4}", stdout), stdout[-3000:]
    for label in LABELS:
        assert label in stdout
    assert stdout.count('"pairings"') == 2  # tuner prediction and reloaded prediction
    assert "reloaded predictions match" in stdout and "wall time:" in stdout
    assert {"adapt.json", "config.json", "model.safetensors"} <= {p.name for p in out_dir.iterdir()}


# ---------------------------------------------------------------------------------------------------
# README's Quick tour
# ---------------------------------------------------------------------------------------------------
_README_DRIVER = r"""
import json, sys, types
blocks = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
for i, src in enumerate(blocks, 1):
    exec(compile(src, f"<README.md python block {i}>", "exec"), ns)

def _tolist(o):  # tensors and arrays (AdaptNLP's embedding results) as lists
    if type(o).__module__.split(".")[0] in ("torch", "numpy"):
        return o.tolist()
    raise TypeError(type(o).__name__)

def jsonable(v):
    try:
        return json.loads(json.dumps(v, default=_tolist))
    except (TypeError, ValueError):
        return repr(v)

left = {k: jsonable(v) for k, v in ns.items()
        if not k.startswith("_") and not isinstance(v, (types.ModuleType, types.FunctionType, type))}
print("\n@@NAMESPACE@@" + json.dumps(left))
"""


def test_readme_quick_tour_runs(tmp_path: Path) -> None:
    blocks = section_blocks("Quick tour", "python")
    assert len(blocks) >= 5, f"expected the Quick tour's python blocks, found {len(blocks)}"
    env = _tiny_env(ADAPT_README_DOCS="40", ADAPT_README_EPOCHS="1", ADAPT_README_MAX_LENGTH="32")
    proc = _run([sys.executable, "-c", _README_DRIVER], cwd=tmp_path, env=env, stdin=json.dumps(blocks))
    printed, _, tail = proc.stdout.rpartition("@@NAMESPACE@@")
    ns = json.loads(tail)

    assert ns["N"] == 40 and ns["MAX_LENGTH"] == 32 and ns["EPOCHS"] == 1
    assert ns["dsets"].startswith("SequenceClassificationDatasets(train=32, valid=8")
    assert "train_loss" in printed  # fastai's metrics table
    assert set(ns["final"]) >= {"train_loss", "valid_loss", "accuracy"}
    assert 0.0 <= ns["metrics"]["accuracy"] <= 1.0 and ns["metrics"]["labels"] == LABELS
    assert len(ns["preds"]["predictions"]) == 2 and set(ns["preds"]["predictions"]) <= set(LABELS)
    assert [set(p) for p in ns["preds"]["pairings"]] == [set(LABELS)] * 2
    assert len(ns["result"]["predictions"]) == 1 and ns["result"]["predictions"][0] in LABELS
    assert (tmp_path / "models" / "bbc" / "adapt.json").is_file()


def test_readme_ner_runs(tmp_path: Path) -> None:
    blocks = section_blocks("Token classification (NER)", "python")
    assert len(blocks) >= 2, f"expected the NER section's python blocks, found {len(blocks)}"
    env = _tiny_env(ADAPT_README_NER_SENTENCES="80", ADAPT_README_NER_MAX_LENGTH="32")
    proc = _run([sys.executable, "-c", _README_DRIVER], cwd=tmp_path, env=env, stdin=json.dumps(blocks))
    printed, _, tail = proc.stdout.rpartition("@@NAMESPACE@@")
    ns = json.loads(tail)

    assert ns["SENTENCES"] == 80 and ns["MAX_LENGTH"] == 32
    assert "precision" in printed and "f1" in printed  # the metrics table and evaluate()
    assert set(ns["preds"]) >= {"sentences", "entities"} and set(ns["result"]) >= {"sentences", "entities"}
    assert (tmp_path / "models" / "wnut" / "adapt.json").is_file() and (tmp_path / "wnut-sample.txt").is_file()


def test_readme_language_models_run(tmp_path: Path) -> None:
    blocks = section_blocks("Language models, generation and embeddings", "python")
    assert len(blocks) == 2, f"expected the section's two python blocks, found {len(blocks)}"
    env = _tiny_env(ADAPT_README_LM_DOCS="60", ADAPT_README_LM_EPOCHS="1", ADAPT_README_MLM_DOCS="8")
    proc = _run([sys.executable, "-c", _README_DRIVER], cwd=tmp_path, env=env, stdin=json.dumps(blocks))
    printed, _, tail = proc.stdout.rpartition("@@NAMESPACE@@")
    ns = json.loads(tail)

    assert ns["N"] == 60 and ns["EPOCHS"] == 1 and ns["MLM_DOCS"] == 8
    assert "perplexity" in printed and ns["after"]["perplexity"] < ns["before"]["perplexity"]
    assert [g.startswith(p) for g, p in zip(ns["texts"]["generated_text"], ["The government said", "Shares in"], strict=False)] == [True] * 2
    assert len(ns["fills"]["predictions"][0][0]) == 3 and "[MASK]" not in ns["fills"]["filled"][0]
    assert ns["words"]["tokens"] == [["Shares", "fell", "sharply", "."]] and len(ns["words"]["embeddings"][0][0]) == 384
    assert "(2, 384)" in printed
    for folder in ("tiny-gpt2", "bbc-gpt2", "bbc-minilm-mlm"):
        assert (tmp_path / "models" / folder / "config.json").is_file()


# ---------------------------------------------------------------------------------------------------
# README's command-line section: every shell block, as written
# ---------------------------------------------------------------------------------------------------
def test_readme_command_line_runs(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """The README's tune/predict/export/serve commands for every task, run by bash in a scratch folder."""
    from .serving_utils import free_port

    blocks = section_blocks("Serving and the command line", "bash")
    assert len(blocks) >= 4, "the section should show tune, predict, export and serve commands"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    bin_dir = str(Path(sys.executable).parent)
    env = _tiny_env(MODEL=str(tiny_bert_dir), ADAPT_CLI_DOCS="40", PORT=str(free_port()),
                    PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    outputs = [run_shell(block, tmp_path, env, prelude="", timeout=TIMEOUT).stdout for block in blocks]
    tunes = [json.loads(line) for line in outputs[0].splitlines() if line.startswith("{")]
    assert {t["task"] for t in tunes} == {
        "sequence_classification", "token_classification", "question_answering", "masked_language_modeling",
        "language_modeling", "summarization", "translation",
    }
    predictions = [json.loads(line) for line in outputs[1].splitlines()]
    assert any("answers" in p for p in predictions) and any("generated_text" in p for p in predictions)
    assert any("translations" in p for p in predictions) and any("entities" in p for p in predictions)
    assert len(predictions) == 10, "one line per input: 2 + 1 + 2 + 1 + 1 + 2 + 1"
    manifest = json.loads((tmp_path / "dist" / "cli-bbc" / "adapt.json").read_text())
    assert "onnx" in manifest and "quantized" in manifest
    served = [json.loads(line) for line in outputs[-1].splitlines() if line.startswith("{")]
    assert served[0]["sentences"][1] == ["Shares fell", "Markets slid"] and "pairings" in served[0]
    assert served[1]["task"] == "sequence_classification"


# ---------------------------------------------------------------------------------------------------
# README's Quick start, Benchmarks and Running the tests: `make` targets dry (they are this suite, the demo
# and the benchmark, each run for real by its own test), the demo's own command at a tiny size
# ---------------------------------------------------------------------------------------------------
def test_readme_make_targets_and_demo_command_run(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**OFFLINE, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    targets, demo = section_blocks("Quick start", "bash")
    dry = run_shell(targets, tmp_path, env).stdout
    assert "scripts/setup.sh" in dry and "examples/demo.py" in dry and "-m pytest tests --durations=25" in dry, dry
    tiny = {"--docs 300": "--docs 40", "--max-length 64": "--max-length 32", "ADAPT_DEMO_DOCS=300": "ADAPT_DEMO_DOCS=40"}
    out = run_shell(rewrite(demo, tiny), tmp_path, env, timeout=TIMEOUT).stdout
    assert "40 BBC docs, 1 epoch(s), max_length 32" in out and "reloaded predictions match" in out, out[-2000:]
    assert (tmp_path / "models" / "bbc-demo" / "adapt.json").is_file()
    (bench,) = section_blocks("Benchmarks", "bash")
    assert "bench/run.py" in run_shell(bench, tmp_path, env).stdout  # run for real at a tiny size by test_bench.py
    (tests,) = section_blocks("Running the tests", "bash")
    pytest_line = next(line for line in tests.splitlines() if "-m pytest" in line)
    dry = run_shell(tests.replace(pytest_line, ""), tmp_path, env).stdout
    assert "ruff check" in dry and "mypy" in dry and "-m 'not docs'" in dry.replace('"', "'"), dry
    collected = run_shell(pytest_line.split("#")[0].replace(".venv/bin/python", sys.executable) + " --collect-only -q",
                          ROOT, env, prelude="").stdout
    assert "test_docs.py::test_tutorial_notebook_runs" in collected and "test_core.py::" not in collected, collected[-2000:]


# Each README section with code, and the tests that run its blocks (as written, or at a tiny size by rewriting
# the documented sizes). A new section with code must name its test here.
README_RUNNERS = {
    "Quick start": ["test_readme_make_targets_and_demo_command_run"],
    "Install": ["test_readme_install_commands_run_against_the_built_wheel"],
    "Quick tour": ["test_readme_quick_tour_runs"],
    "Data-parallel training": ["ddp_run", "test_readme_gpu_launch_lines"],
    "Benchmarks": ["test_readme_make_targets_and_demo_command_run", "test_bench_runs_tiny"],
    "Token classification (NER)": ["test_readme_ner_runs"],
    "Language models, generation and embeddings": ["test_readme_language_models_run"],
    "Question answering, summarization and translation": ["test_readme_qa_summarization_translation_run"],
    "Coming from AdaptNLP": ["test_readme_coming_from_adaptnlp_runs"],
    "The fastai way: your own DataBlock and Learner": ["test_readme_fastai_fastxtend_and_blurr_sections_run"],
    "Coming from fastxtend": ["test_readme_fastai_fastxtend_and_blurr_sections_run"],
    "Coming from blurr": ["test_readme_fastai_fastxtend_and_blurr_sections_run"],
    "Serving and the command line": ["test_readme_command_line_runs"],
    "Docker": ["test_readme_docker_build_lines_are_what_the_smoke_test_builds",
               "test_readme_docker_run_blocks_run_as_written",
               "test_readme_docker_gpu_block_runs_as_written"],
    "Running the tests": ["test_readme_make_targets_and_demo_command_run"],
}


def test_every_readme_block_is_run_by_a_named_test() -> None:
    sections = {b.section for b in readme_blocks()}
    assert sections == set(README_RUNNERS), f"sections with code but no runner: {sections - set(README_RUNNERS)}; " \
                                           f"runners of sections without code: {set(README_RUNNERS) - sections}"
    untagged = [b.line for b in readme_blocks() if b.lang not in ("python", "bash")]
    assert not untagged, f"README blocks at lines {untagged} need a language (python or bash) for their runner"
    defined = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    missing = [n for names in README_RUNNERS.values() for n in names if f"def {n}(" not in defined]
    assert not missing, missing
