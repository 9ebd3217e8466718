"""A model that learned nothing is said so loudly: a WARNING after `tune()`, in the training record and the card.

Each test makes a deliberately collapsed run (a head pushed to one answer, then a rate too small to move it) of a
tiny model; the learning runs of the per-task test files stay quiet (`test_sequence_classification.py` checks one).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from adapt.tasks import get_task

from .contract_utils import DATA, datasets_for


def _tuner(task: str, task_files: Path, tiny_models: dict[str, Path]) -> Any:
    from adapt import set_seed

    spec = get_task(task)
    set_seed(0)
    dsets = datasets_for(spec, task_files / DATA[task][0], tiny_models[DATA[task][1]])
    return spec.tuner(dsets.dataloaders(batch_size=8), str(tiny_models[DATA[task][1]]))


@pytest.mark.parametrize(("task", "says"), [
    ("token_classification", "The tagger predicts no entity in any of the"),
    ("translation", "The model generates empty text for all"),
])
def test_a_collapsed_run_is_reported(task: str, says: str, task_files, tiny_models, tmp_path, caplog) -> None:
    import torch

    tuner = _tuner(task, task_files, tiny_models)
    with torch.no_grad():
        if task == "token_classification":  # every word "O"
            bias = tuner.model.classifier.bias
            bias.fill_(-50.0)
            bias[tuner.classes.index("O")] = 50.0
        else:  # end of text first, every time
            tuner.model.final_logits_bias[..., tuner.tokenizer.eos_token_id] = 1e4
    with caplog.at_level(logging.WARNING, logger="adapt"):
        tuner.tune(1, lr=1e-12)
    assert says in caplog.text
    warning = tuner.training_record["warnings"][0]
    assert warning.startswith(says)
    card = (tuner.save(tmp_path / "model") / "README.md").read_text()
    assert "## Limitations" in card and warning in card


def test_a_learning_tagger_is_not_warned_about(ner_trained) -> None:
    tuner, _ = ner_trained
    assert tuner.training_record["warnings"] == []
