"""Regression as a sequence-classification head (`regression=True`: one output, MSE loss), through every door:
the data constructors, the tuner and its learning check, prediction (Python, Easy, CLI, REST), saving, the card,
`adapt evaluate` and the int8 export's parity check."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from adapt import EasySequenceClassifier, SequenceClassificationDatasets, SequenceClassificationTuner, set_seed
from adapt.errors import AdaptError, InvalidDataError, InvalidInputError, InvalidOptionError, NumClassesError

from .contract_utils import json_close, run_cli, server
from .serving_utils import http

FILLER = ["the", "market", "rose", "as", "shares", "in", "the", "bank", "fell", "after", "the", "report", "on", "monday", "and",
          "the", "team", "won"]
METRICS = ["mse", "rmse", "mae", "r2", "pearson"]
TEXTS = ["goal goal the market rose", "the bank fell on monday", "goal the team won goal goal"]
MAX_LEN = 24


def _rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Short texts whose target is how often they say "goal" (0 to 3): learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 8))]
        for _ in range(i % 4):
            words.insert(rng.randint(0, len(words)), "goal")
        rows.append({"text": " ".join(words), "score": float(i % 4)})
    return rows


@pytest.fixture(scope="module")
def reg_df() -> Any:
    import pandas as pd

    return pd.DataFrame(_rows(64))


@pytest.fixture(scope="module")
def reg_dsets(reg_df: Any, model_path: str) -> SequenceClassificationDatasets:
    return SequenceClassificationDatasets.from_dfs(reg_df, "text", "score", model_path, regression=True, max_length=MAX_LEN)


@pytest.fixture(scope="module")
def reg_trained(reg_dsets: SequenceClassificationDatasets, model_path: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """MiniLM with a one-output head, 3 short epochs (51 texts, batches of 8): (tuner, metrics before, after)."""
    set_seed(0)
    tuner = SequenceClassificationTuner(reg_dsets.dataloaders(batch_size=8), model_path)
    before = tuner.evaluate()
    tuner.tune(3, lr=3e-4)
    return tuner, before, tuner.evaluate()


@pytest.fixture(scope="module")
def reg_saved(reg_trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tuner, _, _ = reg_trained
    return Path(tuner.save(tmp_path_factory.mktemp("regression") / "goals"))


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------
def test_regression_data_keeps_numeric_targets_as_floats(reg_dsets: Any, reg_df: Any) -> None:
    assert reg_dsets.regression and reg_dsets.vocab is None and not reg_dsets.multi_label
    by_text = dict(zip(reg_df.text, reg_df.score, strict=True))
    rows = reg_dsets.raw.train
    assert rows.features["labels"].dtype.startswith("float")
    assert all(isinstance(v, float) for v in rows["labels"])
    assert [by_text[t] for t in rows["text"]] == rows["labels"]
    assert sorted(set(rows["labels"])) == [0.0, 1.0, 2.0, 3.0]


def test_every_constructor_form_takes_regression(tmp_path: Path, model_path: str) -> None:
    import pandas as pd
    from datasets import Dataset

    rows = _rows(20)
    pd.DataFrame(rows).to_csv(tmp_path / "goals.csv", index=False)
    (tmp_path / "goals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    built = [
        SequenceClassificationDatasets.from_csvs(tmp_path / "goals.csv", "text", "score", model_path, regression=True),
        SequenceClassificationDatasets.from_jsons(tmp_path / "goals.jsonl", "text", "score", model_path, regression=True),
        SequenceClassificationDatasets.from_hf(Dataset.from_list(rows), "text", "score", model_path, regression=True),
    ]
    for dsets in built:
        assert dsets.regression and dsets.vocab is None
        assert set(dsets.raw.train["labels"]) | set(dsets.raw.valid["labels"]) == {0.0, 1.0, 2.0, 3.0}


def test_targets_that_are_not_finite_numbers_are_named(tmp_path: Path, model_path: str) -> None:
    import pandas as pd

    df = pd.DataFrame(_rows(20))
    df["score"] = [str(v) for v in df.score]  # numbers as text are read as numbers ...
    df.loc[3, "score"], df.loc[5, "score"] = "n/a", None  # ... but not these
    with pytest.raises(InvalidDataError) as e:
        SequenceClassificationDatasets.from_dfs(df, "text", "score", model_path, regression=True)
    assert "2 bad row(s)" in str(e.value) and "DataFrame index 3" in str(e.value) and "DataFrame index 5" in str(e.value)
    assert "'n/a'" in str(e.value) and "not a finite number" in str(e.value)
    df = pd.DataFrame(_rows(20))
    df.loc[7, "score"] = float("nan")
    with pytest.raises(InvalidDataError, match="DataFrame index 7"):
        SequenceClassificationDatasets.from_dfs(df, "text", "score", model_path, regression=True)
    lines = ["text,score", *(f"{r['text']},{r['score']}" for r in _rows(20))]
    lines[3] = "some text,abc"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match="'bad.csv' line 4: 'score' is missing or not a finite number"):
        SequenceClassificationDatasets.from_csvs(tmp_path / "bad.csv", "text", "score", model_path, regression=True)
    with pytest.raises(InvalidDataError, match="targets that vary"):
        SequenceClassificationDatasets.from_dfs(df.assign(score=1.0), "text", "score", model_path, regression=True)


def test_misspelled_or_conflicting_options_are_refused(reg_df: Any, reg_dsets: Any, model_path: str) -> None:
    with pytest.raises(InvalidOptionError, match="Did you mean 'regression'"):
        SequenceClassificationDatasets.from_dfs(reg_df, "text", "score", model_path, regresion=True)
    with pytest.raises(InvalidOptionError, match="cannot be multi-label") as e:
        SequenceClassificationDatasets.from_dfs(reg_df, "text", "score", model_path, regression=True, is_multicategory=True)
    assert isinstance(e.value, AdaptError)
    dls = reg_dsets.dataloaders(batch_size=8)
    for option, error in (({"class_weights": "balanced"}, InvalidOptionError), ({"threshold": 0.4}, InvalidOptionError),
                          ({"num_classes": 3}, NumClassesError)):
        with pytest.raises(error):  # refused before any model loads
            SequenceClassificationTuner(dls, model_path, **option)


# ---------------------------------------------------------------------------------------------------
# training and metrics
# ---------------------------------------------------------------------------------------------------
def test_the_tuner_builds_a_regression_head_and_learns(reg_trained: Any) -> None:
    from fastai.losses import BaseLoss
    from torch import nn

    tuner, before, after = reg_trained
    cfg = tuner.model.config
    assert cfg.num_labels == 1 and cfg.problem_type == "regression" and tuner.classes == ["score"]
    assert isinstance(tuner.loss_func, BaseLoss) and isinstance(tuner.loss_func.func, nn.MSELoss)
    assert [m.name for m in tuner.metrics] == METRICS
    assert set(METRICS) <= set(tuner.history()[-1]) and set(METRICS) <= set(tuner.final_metrics())
    # untrained, the new head answers about 0 for every text (targets around 1.5): the learning check flags it
    assert "predicts about the same value" in before["warning"] or "training mean" in before["warning"]
    assert set(after) >= {"n", *METRICS, "mean_baseline"} and after["n"] == len(tuner.dls.valid.dataset)
    assert after["mse"] < before["mse"] / 2 and after["mse"] < after["mean_baseline"]["mse"]
    assert after["r2"] > 0.2 and after["pearson"] > 0.5 and "warning" not in after
    assert math.isclose(after["rmse"], math.sqrt(after["mse"])) and after["mean_baseline"]["value"] == pytest.approx(1.5, abs=0.2)
    assert not tuner.training_record.get("warnings")
    with pytest.raises(InvalidInputError, match="no confusion matrix"):
        tuner.plot_confusion_matrix()


def test_evaluate_on_labelled_data(reg_trained: Any) -> None:
    import pandas as pd

    tuner, _, _ = reg_trained
    data = pd.DataFrame(_rows(12, seed=1))
    scores = tuner.evaluate(data)
    assert scores["n"] == 12 and set(METRICS) <= set(scores) and json.dumps(scores)
    data["score"] = data["score"].astype(object)
    data.loc[4, "score"] = "lots"
    with pytest.raises(InvalidDataError, match="Row 4 of the evaluation split"):
        tuner.evaluate(data)


def test_regression_metrics_flag_a_model_that_learned_nothing() -> None:
    from adapt.fitting import lower_is_better
    from adapt.tasks.sequence_classification import regression_metrics

    targets = [0.0, 1.0, 2.0, 3.0]
    flat = regression_metrics([1.2, 1.2, 1.2, 1.2], targets, train_mean=1.5)
    assert "predicts about the same value (1.2)" in flat["warning"] and flat["pearson"] is None
    assert flat["mean_baseline"] == {"value": 1.5, "mse": 1.25, "rmse": pytest.approx(math.sqrt(1.25)), "mae": 1.0, "r2": 0.0}
    worse = regression_metrics([3.0, 2.0, 1.0, 0.0], targets, train_mean=1.5)
    assert "no better than always predicting the training mean 1.5" in worse["warning"] and worse["pearson"] == -1.0
    diverged = regression_metrics([float("nan"), 1.0, 2.0, 3.0], targets)
    assert "training diverged" in diverged["warning"] and diverged["mse"] is None and json.dumps(diverged)
    good = regression_metrics([0.1, 0.9, 2.2, 2.8], targets)
    assert "warning" not in good and good["r2"] > 0.9 and good["mae"] == pytest.approx(0.15)
    assert all(lower_is_better(m) for m in ("mse", "rmse", "mae")) and not any(map(lower_is_better, ("r2", "pearson")))


# ---------------------------------------------------------------------------------------------------
# prediction: every door gives the same value
# ---------------------------------------------------------------------------------------------------
def test_predictions_are_values_at_every_detail_level(reg_trained: Any) -> None:
    tuner, _, _ = reg_trained
    low = tuner.predict(TEXTS)
    assert set(low) == {"sentences", "predictions"} and low["sentences"] == TEXTS
    assert all(isinstance(v, float) for v in low["predictions"])
    assert low["predictions"][0] > low["predictions"][1] and low["predictions"][2] > low["predictions"][1]  # "goal"s
    medium = tuner.predict(TEXTS, detail_level="medium")
    assert medium == {**low, "target": "score"}
    high = tuner.predict(TEXTS, detail_level="high")
    assert high == {**medium, "truncated": [False] * 3, "windows": [1] * 3, "regression": True}
    assert json.loads(json.dumps(high)) == high
    one = tuner.predict(TEXTS[0])
    assert one["predictions"] == [pytest.approx(low["predictions"][0], abs=1e-5)]
    assert tuner.predict(TEXTS, class_names=["goals"], detail_level="medium")["target"] == "goals"
    with pytest.raises(InvalidInputError, match="regression"):
        tuner.predict(TEXTS, threshold=0.5)


def test_saved_folder_reloads_as_regression_with_its_card(reg_trained: Any, reg_saved: Path) -> None:
    tuner, _, _ = reg_trained
    manifest = json.loads((reg_saved / "adapt.json").read_text())
    config = json.loads((reg_saved / "config.json").read_text())
    assert manifest["regression"] is True and manifest["problem_type"] == "regression" and manifest["labels"] == ["score"]
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score"}
    card = (reg_saved / "README.md").read_text()
    assert "A regression model: it predicts one number per input (score)." in card
    assert all(f"- {m}: " in card for m in METRICS) and "accuracy" not in card
    expected = tuner.predict(TEXTS, detail_level="high")
    assert json_close(EasySequenceClassifier().tag_text(TEXTS, reg_saved, detail_level="high"), expected)
    again = SequenceClassificationTuner(tuner.dls, str(reg_saved))  # goes on training from the saved regressor
    assert again.model.config.problem_type == "regression" and json_close(again.predict(TEXTS), tuner.predict(TEXTS))


def test_easy_cli_and_server_answer_the_same_value(reg_saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    easy = EasySequenceClassifier().tag_text(TEXTS, reg_saved, detail_level="medium")
    code, out, err = run_cli(capsys, "predict", reg_saved, *TEXTS, "--detail-level", "medium")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["predictions"] for line in lines] == [[v] for v in easy["predictions"]]
    assert all(line["target"] == "score" for line in lines)
    with server(reg_saved) as base:
        status, body = http("POST", f"{base}/predict", {"texts": TEXTS, "detail_level": "medium"})
        assert status == 200 and json_close(body, easy)
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200 and meta["labels"] == ["score"]
        status, body = http("POST", f"{base}/predict", {"texts": TEXTS, "parameters": {"threshold": 0.5}})
        assert status == 422 and "regression" in body["detail"]


def test_adapt_evaluate_scores_a_regression_folder(reg_saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    pd.DataFrame(_rows(12, seed=2)).to_csv(tmp_path / "more.csv", index=False)
    code, out, err = run_cli(capsys, "evaluate", reg_saved, tmp_path / "more.csv", "--label-col", "score")
    assert code == 0, err[-2000:]
    summary = json.loads(out)
    assert summary["n"] == 12 and set(METRICS) <= set(summary["metrics"]) and "mean_baseline" in summary["metrics"]


def test_adapt_tune_takes_the_regression_option(tmp_path: Path, model_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    pd.DataFrame(_rows(16)).to_csv(tmp_path / "goals.csv", index=False)
    code, out, err = run_cli(capsys, "tune", tmp_path / "goals.csv", "--model", model_path, "--out", tmp_path / "m",
                             "--label-col", "score", "--option", "regression=true", "--epochs", "1", "--lr", "1e-4",
                             "--max-length", str(MAX_LEN), "--batch-size", "8")
    assert code == 0, err[-2000:]
    assert set(METRICS) <= set(json.loads(out)["metrics"])
    assert json.loads((tmp_path / "m" / "adapt.json").read_text())["regression"] is True
    code, _, err = run_cli(capsys, "tune", tmp_path / "goals.csv", "--model", model_path, "--out", tmp_path / "n",
                           "--option", "regresion=true")
    assert code == 2 and "Did you mean 'regression'" in err


# ---------------------------------------------------------------------------------------------------
# int8 export: values compared within a tolerance
# ---------------------------------------------------------------------------------------------------
def test_parity_decisions_compare_values_within_a_tolerance() -> None:
    from adapt.quantize import agreement
    from adapt.tasks.sequence_classification import RegressionResult, RegressionResults

    def results(values: list[float]) -> RegressionResults:
        return RegressionResults([RegressionResult(text=str(v), prediction=v) for v in values], "score")

    ref = results([0.0, 1.0, 2.0, 3.0]).decisions()  # spread (std) 1.118: values within 0.112 agree
    assert agreement(ref, results([0.1, 0.9, 2.11, 3.0]).decisions()) == 1.0
    assert agreement(ref, results([0.3, 1.0, 2.0, 2.0]).decisions()) == 0.5


def test_int8_export_checks_parity_on_values(reg_trained: Any, tmp_path: Path) -> None:
    import copy
    import warnings

    import torch

    from adapt.fastcopy import parity
    from adapt.quantize import ParityError

    tuner, _, _ = reg_trained
    predictor, texts = tuner.predictor(), tuner.heldout_texts()
    assert parity(predictor, predictor.model, texts, 0.99, "raise", "int8") == 1.0
    shifted = copy.deepcopy(predictor.model)
    with torch.no_grad():
        shifted.classifier.bias += 1.0  # every value one unit off: no copy may ship like that
    with pytest.raises(ParityError, match="agrees with fp32 on only 0.00%"):
        parity(predictor, shifted, texts, 0.99, "raise", "int8")
    with warnings.catch_warnings():  # a few short epochs leave values that int8 may move by about 10% of their spread
        warnings.simplefilter("ignore", UserWarning)
        folder = tuner.export(tmp_path / "int8", quantize=True, on_parity_fail="warn")
    entry = json.loads((Path(folder) / "adapt.json").read_text())["quantized"]
    assert entry["agreement"] >= 0.5 and entry["n_texts"] == len(texts) == len(tuner.dls.valid.dataset)
    fp32 = EasySequenceClassifier(precision="fp32").tag_text(TEXTS, folder)["predictions"]
    int8 = EasySequenceClassifier(precision="int8").tag_text(TEXTS, folder)["predictions"]
    assert fp32 != int8 and all(abs(a - b) < 0.25 for a, b in zip(fp32, int8, strict=True))
