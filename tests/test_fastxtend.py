"""fastxtend's documented Hugging Face flow, with only its import line changed (`fastxtend` -> `adapt.fastxtend`):
tokenize with `Dataset.map`, `HuggingFaceLoader`s in fastai `DataLoaders`, `Learner(..., loss_func=HuggingFaceLoss(),
cbs=HuggingFaceCallback)`; a loss passed instead replaces the model's own; the learner's model becomes an adapt
folder that Easy and the CLI answer from as the learner does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from .contract_utils import run_cli

N_TRAIN, N_VALID = 64, 32


def _fastxtend_flow(folder: Any, texts: list[str], labels: list[int], loss_func: Any) -> Any:
    """fastxtend's README flow, as its users write it (with the import line changed)."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from adapt.fastxtend.text.all import DataLoaders, HuggingFaceCallback, HuggingFaceLoader, Learner

    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = datasets.Dataset.from_dict({"text": texts, "labels": labels})
    data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])
    train, valid = data.select(range(N_TRAIN)), data.select(range(N_TRAIN, N_TRAIN + N_VALID))
    collate = DataCollatorWithPadding(tokenizer)
    train_dl = HuggingFaceLoader(train.with_format("torch"), batch_size=8, collate_fn=collate, shuffle=True, drop_last=True)
    valid_dl = HuggingFaceLoader(valid.with_format("torch"), batch_size=16, collate_fn=collate)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return Learner(DataLoaders(train_dl, valid_dl), model, loss_func=loss_func, cbs=HuggingFaceCallback), tokenizer


@pytest.fixture(scope="module")
def bbc_rows(trained_tasks, bbc_df) -> tuple[Any, list[str], list[int], list[str]]:
    _, folder = trained_tasks["sequence_classification"]
    classes = json.loads((folder / "adapt.json").read_text())["labels"]
    rows = bbc_df.sample(N_TRAIN + N_VALID, random_state=0)
    labels = [i % 2 for i in range(len(rows))]  # learnable at once: class 1's texts open with a marker word
    texts = [("goal goal goal " if y else "") + t for y, t in zip(labels, rows.text, strict=True)]
    return folder, texts, labels, classes


def test_the_fastxtend_flow_trains_on_the_models_own_loss_and_saves_an_adapt_folder(bbc_rows, tmp_path, capsys) -> None:
    from adapt import EasySequenceClassifier, set_seed
    from adapt.fastxtend.text.all import HuggingFaceLoss, save_adapt_folder

    folder, texts, labels, classes = bbc_rows
    set_seed(0)
    learn, tokenizer = _fastxtend_flow(folder, texts, labels, HuggingFaceLoss())
    before = float(learn.validate()[0])
    learn.fit_one_cycle(3, 1e-3)
    after = float(learn.validate()[0])
    assert after < 0.8 * before  # it learned (from ln 5 towards the 2 classes used), on the model's own cross-entropy
    assert learn.hf_model is learn.model  # unwrapped after the fit, as fastxtend does

    saved = save_adapt_folder(learn, tmp_path / "bbc", "classification", tokenizer, labels=classes)
    manifest = json.loads((saved / "adapt.json").read_text())
    assert manifest["task"] == "sequence_classification" and manifest["labels"] == classes
    assert "model.safetensors" in manifest["files"] and (saved / "README.md").is_file()
    news = texts[N_TRAIN:N_TRAIN + 4]
    with torch.no_grad():
        enc = tokenizer(news, truncation=True, max_length=64, padding=True, return_tensors="pt")
        mine = [classes[i] for i in learn.hf_model.eval()(**enc).logits.argmax(-1).tolist()]
    assert EasySequenceClassifier().tag_text(news, str(saved))["predictions"] == mine
    code, out, _ = run_cli(capsys, "predict", str(saved), *news, "--output", "json")
    assert code == 0 and json.loads(out)["predictions"] == mine


def test_a_loss_passed_to_the_learner_replaces_the_models_own(bbc_rows) -> None:
    from adapt import set_seed

    folder, texts, labels, _ = bbc_rows
    seen: list[int] = []

    def weighted(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append(len(targets))
        return 3 * torch.nn.functional.cross_entropy(logits, targets)

    set_seed(0)
    learn, _ = _fastxtend_flow(folder, texts, labels, weighted)
    learn.fit(1, 1e-4)
    assert seen and all(n == 8 for n in seen[: N_TRAIN // 8])  # called on every training batch's logits and labels
    own_scale = float(learn.validate()[0]) / 3
    assert 0.0 < own_scale < 5.0  # the recorded loss is the user's (3x cross-entropy), not the model's
