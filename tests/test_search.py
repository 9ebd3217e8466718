"""Hyperparameter search with Optuna: `tuner.search` finds better settings than a deliberately bad default in a few
trials on a tiny model, puts the weights back, `tune_best` repeats the best trial and the record and card say so;
`adapt tune --search N` does the same from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adapt.errors import InvalidChoiceError, InvalidInputError
from adapt.search import default_space
from adapt.tasks import get_task

from .contract_utils import run_cli

SPACE = {"lr": (1e-3, 3e-2), "epochs": [1, 2], "batch_size": [4, 8], "class_weights": [None, "balanced"]}


@pytest.fixture(scope="module")
def word_dls(tiny_models):
    """An easy task a tiny random BERT learns in an epoch: does the sentence contain "great" or "awful"?"""
    import random

    import pandas as pd

    from adapt import SequenceClassificationDatasets

    rng = random.Random(0)
    filler = ["the", "a", "film", "plot", "actor", "scene", "music", "story", "end", "start", "long", "short"]
    rows = []
    for i in range(96):
        words = rng.sample(filler, 5)
        words.insert(rng.randrange(6), "great" if i % 2 else "awful")
        rows.append({"text": " ".join(words), "label": "pos" if i % 2 else "neg"})
    dsets = SequenceClassificationDatasets.from_dfs(pd.DataFrame(rows), tokenizer_name=str(tiny_models["bert"]),
                                                    tokenize_kwargs={"max_length": 16})
    return dsets


def _fresh(word_dls, tiny_models, **kwargs) -> object:
    from adapt import set_seed

    set_seed(0)
    return get_task("sequence_classification").tuner(word_dls.dataloaders(batch_size=8), str(tiny_models["bert"]), **kwargs)


def test_search_beats_a_bad_default_puts_the_weights_back_and_tune_best_repeats_the_best(word_dls, tiny_models) -> None:
    bad = _fresh(word_dls, tiny_models).tune(1, lr=1e-7)["valid_loss"]  # a rate that trains nothing
    tuner = _fresh(word_dls, tiny_models)
    start = {k: v.clone() for k, v in tuner.model.state_dict().items()}
    result = tuner.search(4, space=SPACE)
    assert all(torch.equal(v, start[k]) for k, v in tuner.model.state_dict().items())  # the search leaves no trace
    assert len(result.trials) == 4 and set(result.best) == set(SPACE) and result.direction == "minimize"
    assert result.best_value == min(t["value"] for t in result.trials) < 0.95 * bad, (result.best_value, bad)
    assert tuner.last_search is result and json.dumps(result.to_dict())
    assert tuner.training_record == {} and tuner.history() == []  # no trial's record is left as the tuner's
    metrics = tuner.tune_best()
    assert metrics["valid_loss"] == pytest.approx(result.best_value, rel=0.02)  # the best trial again
    assert tuner.dls.train.bs == result.best["batch_size"] and tuner.class_weights == result.best["class_weights"]
    assert tuner.training_record["search"]["best"] == result.best
    assert "hyperparameter search (Optuna, 4 trials" in tuner.model_card()


def test_search_names_an_unknown_setting_and_tune_best_needs_a_search(word_dls, tiny_models) -> None:
    tuner = _fresh(word_dls, tiny_models, class_weights="balanced")
    with pytest.raises(InvalidInputError, match="no search has run"):
        tuner.tune_best()
    with pytest.raises(InvalidChoiceError, match="Did you mean 'batch_size'"):
        tuner.search(2, space={"batch_sise": [8, 16]})
    with pytest.raises(InvalidInputError, match="n_trials"):
        tuner.search(0)
    assert "class_weights" not in default_space(tuner, 2)  # the user's own choice stays
    result = tuner.search(1, space={"batch_size": [4]}, strategy="flat_cos", lr=1e-3)  # the rest as tune's
    assert result.best == {"batch_size": 4} and result.tune_call() == {"epochs": 1, "lr": 1e-3, "strategy": "flat_cos"}
    assert tuner.dls.train.bs == 8 and tuner.class_weights == "balanced"  # put back


def test_adapt_tune_search_trains_with_the_best_trial_and_records_the_search(task_files, tiny_models, tmp_path: Path,
                                                                             capsys) -> None:
    code, out, err = run_cli(capsys, "tune", str(task_files / "cls.csv"), "--model", str(tiny_models["bert"]),
                             "--max-length", "32", "--epochs", "1", "--search", "2", "--out", str(tmp_path / "m"))
    assert code == 0, err
    record = json.loads((tmp_path / "m" / "adapt.json").read_text())["training"]
    assert len(record["search"]["trials"]) == 2 and record["epochs"] == 1 == record["search"]["best"]["epochs"]
    assert record["lr"] == pytest.approx(record["search"]["best"]["lr"]) and json.loads(out)["metrics"]
