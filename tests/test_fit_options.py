"""tune()'s fit options, on fastai's callbacks: gradient accumulation, the best epoch kept, early stopping,
the monitor checked by name, and a CSV of the metrics table. Tiny models, a few steps."""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest

from adapt.errors import InvalidChoiceError, InvalidInputError
from adapt.tasks import get_task

from .contract_utils import step_counter


def _tuner(trained_tasks, tmp_path: Path) -> Any:
    from adapt import set_seed

    base, folder = trained_tasks["sequence_classification"]
    set_seed(0)
    return get_task("sequence_classification").tuner(base.dls, str(folder), work_dir=tmp_path / "work")


def test_accumulate_steps_the_optimizer_every_n_batches(trained_tasks, tmp_path: Path, caplog) -> None:
    tuner = _tuner(trained_tasks, tmp_path)
    plain, every2 = step_counter(), step_counter()
    tuner.tune(1, lr=1e-4, callbacks=[plain])
    with caplog.at_level(logging.INFO, logger="adapt"):
        tuner.tune(1, lr=1e-4, callbacks=[every2], accumulate=2)
    assert plain.steps == plain.batches == every2.batches > 2
    assert every2.steps == plain.batches // 2
    assert "an effective batch of 16" in caplog.text
    with pytest.raises(InvalidInputError, match="accumulate"):
        tuner.tune(1, lr=1e-4, accumulate=0)


def test_keep_best_ends_with_the_best_epochs_weights_and_marks_it(trained_tasks, tmp_path: Path) -> None:
    from fastai.callback.core import Callback

    class Snapshots(Callback):
        order = 70  # before SaveModelCallback restores anything at the end of the fit

        def before_fit(self) -> None:
            self.states: list[dict[str, Any]] = []

        def after_epoch(self) -> None:
            self.states.append(copy.deepcopy({k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}))

    tuner = _tuner(trained_tasks, tmp_path)
    snaps = Snapshots()
    tuner.tune(4, lr=3e-3, callbacks=[snaps], keep_best=True)
    history = tuner.history()
    best = min(range(4), key=lambda i: history[i]["valid_loss"])
    assert tuner.best_epoch == best and [row["best"] for row in history] == [i == best for i in range(4)]
    now = tuner.learn.model.state_dict()
    assert all((now[k] == snaps.states[best][k]).all() for k in now)
    assert (tmp_path / "work" / "models" / "best.pth").is_file()  # in the work_dir the user chose
    assert tuner.training_record["best_epoch"] == best and "best" not in tuner.final_metrics()
    # what is reported is what was kept: tune's answer, the CLI's JSON (final_metrics) and the card
    kept = {k: v for k, v in history[best].items() if k != "best"}
    assert tuner.final_metrics() == kept
    card = (tuner.save(tmp_path / "saved") / "README.md").read_text()
    assert f"epoch {best + 1} of 4, the best kept by keep_best" in card
    assert f"- valid_loss: {kept['valid_loss']:.4f}" in card


def test_the_card_reports_the_kept_epoch_not_the_last() -> None:
    from adapt.card import card_metadata, model_card

    rows = [{"epoch": i, "train_loss": 1.0, "valid_loss": v, "accuracy": a, "best": i == 1}
            for i, (v, a) in enumerate([(0.9, 0.5), (0.7, 0.8), (0.8, 0.6)])]
    manifest = {"task": "sequence_classification", "base_model": "bert-base-uncased", "labels": ["a", "b"],
                "training": {"history": rows, "best_epoch": 1, "epochs_run": 3}}
    card = model_card(manifest)
    assert "epoch 2 of 3, the best kept by keep_best" in card and "- valid_loss: 0.7000" in card
    assert "- accuracy: 0.8000" in card and "- valid_loss: 0.8000" not in card.split("## Training")[0]
    assert card_metadata(manifest)["metrics"] == ["accuracy"]
    for row in rows:
        row["best"] = False
    manifest["training"]["best_epoch"] = None
    assert "## Final validation metrics" in model_card(manifest) and "- valid_loss: 0.8000" in model_card(manifest)


def test_early_stopping_stops_when_the_monitor_stops_improving(trained_tasks, tmp_path: Path) -> None:
    tuner = _tuner(trained_tasks, tmp_path)
    tuner.tune(8, lr=1e-12, monitor="accuracy", early_stopping=1)  # a rate this small changes no decision
    assert len(tuner.history()) == 2 and tuner.training_record["epochs_run"] == 2


def test_a_misspelled_tune_keyword_is_refused_before_training(trained_tasks, tmp_path: Path) -> None:
    tuner = _tuner(trained_tasks, tmp_path)
    with pytest.raises(InvalidChoiceError, match=r"Unknown tune\(\) keyword 'early_stop'.*Did you mean 'early_stopping'\?"):
        tuner.tune(1, lr=None, early_stop=2)  # refused before the LR finder runs
    assert tuner.lr_suggestion is None
    with pytest.raises(InvalidChoiceError, match="Did you mean 'div_final'"):
        tuner.tune(1, lr=1e-4, strategy="CosineAnnealing", div_finall=10)
    tuner.tune(1, lr=1e-4, pct_start=0.5)  # the policy's own keywords pass through to fastai


def test_a_misspelled_monitor_lists_the_metrics(trained_tasks, tmp_path: Path) -> None:
    tuner = _tuner(trained_tasks, tmp_path)
    with pytest.raises(InvalidChoiceError, match=r"Did you mean 'f1_macro'\?.*valid_loss.*accuracy"):
        tuner.tune(1, lr=1e-4, monitor="f1-macro", keep_best=True)
    with pytest.raises(InvalidChoiceError, match="csv"):
        tuner.tune(1, lr=1e-4, report_to="tensorbord")


def test_report_to_csv_writes_the_metrics_table(trained_tasks, tmp_path: Path) -> None:
    import pandas as pd

    tuner = _tuner(trained_tasks, tmp_path)
    tuner.tune(2, lr=1e-4, report_to="csv")
    table = pd.read_csv(tmp_path / "work" / "history.csv")
    assert list(table.epoch) == [0, 1] and {"train_loss", "valid_loss", "accuracy"} <= set(table.columns)
    assert table.valid_loss.tolist() == pytest.approx([row["valid_loss"] for row in tuner.history()], rel=1e-4)


def test_gradient_checkpointing_trains_with_the_same_gradients(trained_tasks, tmp_path: Path) -> None:
    """The model's own switch: activations are recomputed in the backward pass, the gradients stay the same."""
    import torch

    base, folder = trained_tasks["sequence_classification"]
    spec = get_task("sequence_classification")
    grads = []
    for on in (False, True):
        tuner = spec.tuner(base.dls, str(folder), work_dir=tmp_path / str(on), gradient_checkpointing=on)
        assert tuner.model.is_gradient_checkpointing is on
        tuner.model.train()
        torch.manual_seed(0)  # the same dropout masks (checkpointing replays the RNG state when it recomputes)
        batch = tuner.dls.valid.one_batch()
        xb, yb = batch[:-1], batch[-1]
        loss = tuner.learn.loss_func(tuner.learn.model(*xb), yb)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in tuner.model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_report_to_tensorboard_writes_events_a_reader_reads_back(trained_tasks, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tuner = _tuner(trained_tasks, tmp_path)
    tuner.tune(2, lr=1e-4, report_to=["tensorboard", "csv"])  # log_preds crashed fastai's callback on text
    runs = tmp_path / "work" / "runs"
    events = EventAccumulator(str(runs)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "valid_loss", "accuracy"} <= tags, tags
    valid = [e.value for e in events.Scalars("valid_loss")]
    assert valid == pytest.approx([row["valid_loss"] for row in tuner.history()], rel=1e-4)
    assert (tmp_path / "work" / "history.csv").is_file()


def test_trackers_record_the_hyperparameters_and_the_training_record(trained_tasks, tmp_path: Path, monkeypatch) -> None:
    """TensorBoard: hparams and a text summary of the record, read back with tensorboard's reader. W&B in offline
    mode: the run's files hold the config (hyper-parameters, record) and the final metrics."""
    import json

    pytest.importorskip("tensorboard")
    wandb = pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from .wandb_utils import run_contents

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tuner = _tuner(trained_tasks, tmp_path)
    tuner.tune(1, lr=1e-4, report_to=["tensorboard", "wandb"])
    assert wandb.run is None  # adapt finished the run it started
    texts = EventAccumulator(str(tmp_path / "work" / "runs"), size_guidance={"tensors": 0}).Reload()
    (event,) = texts.Tensors("adapt/training_record/text_summary")
    record = json.loads(event.tensor_proto.string_val[0].decode().strip("`\njson"))
    assert record["lr_chosen"] == pytest.approx(1e-4) and record["epochs"] == 1
    hparams = next((tmp_path / "work" / "runs").rglob("hparams"))
    assert EventAccumulator(str(hparams)).Reload().Tags()["scalars"]  # hparam/<metric> values
    (run_file,) = (tmp_path / "work" / "wandb").glob("offline-run-*/run-*.wandb")
    run = run_contents(run_file)
    assert run["config"]["task"] == "sequence_classification" and run["config"]["batch_size"] == 8
    assert run["config"]["training_record"]["lr_chosen"] == pytest.approx(1e-4)
    epochs = [row for row in run["history"] if "valid_loss" in row]
    assert [row["valid_loss"] for row in epochs] == pytest.approx([r["valid_loss"] for r in tuner.history()], rel=1e-4)
    assert run["summary"]["valid_loss"] == pytest.approx(tuner.history()[-1]["valid_loss"], rel=1e-4)


def test_the_best_epoch_on_a_tie_is_the_earlier_one_as_save_model_callback_keeps() -> None:
    from types import SimpleNamespace

    from adapt.tracking import mark_best

    rows = [{"epoch": 0, "accuracy": 0.25, "valid_loss": 1.2}, {"epoch": 1, "accuracy": 0.375, "valid_loss": 1.0},
            {"epoch": 2, "accuracy": 0.375, "valid_loss": 1.0}]
    for monitor in ("accuracy", "valid_loss"):
        fake = SimpleNamespace(_history=[dict(r) for r in rows])
        mark_best(fake._history, monitor)
        assert [r["best"] for r in fake._history] == [False, True, False], monitor


def test_perplexity_and_error_rates_improve_downwards() -> None:
    from adapt.tuner import lower_is_better

    assert all(map(lower_is_better, ("valid_loss", "train_loss", "perplexity", "error_rate")))
    assert not any(map(lower_is_better, ("accuracy", "f1_macro", "exact_match")))


def test_a_wandb_run_that_cannot_start_is_a_tracker_error(trained_tasks, tmp_path: Path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    from adapt.errors import TrackerError

    def refuse(**_: Any) -> None:  # what wandb says without an API key and without a terminal to ask for one
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.raises(TrackerError, match=r"could not start a W&B run \(UsageError: api_key.*wandb login.*WANDB_MODE"):
        _tuner(trained_tasks, tmp_path).tune(1, lr=1e-4, report_to="wandb")
