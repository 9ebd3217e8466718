"""Resumable training: `tune(checkpoint_every=1)` writes an atomic checkpoint each epoch, Ctrl-C leaves it usable and
says where it is, and `tune(resume_from=...)` ends with the weights of the uninterrupted run. Tiny NER model."""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from adapt.checkpoint import check_whole_steps
from adapt.errors import InvalidInputError
from adapt.tasks import get_task

EPOCHS = 3


def _fresh(trained_tasks: Any, work_dir: Path | None, seed: int = 0) -> Any:
    """A tuner as a new process would build it: seeded, with new loaders (their shuffling starts from the seed)."""
    from adapt import set_seed

    base, folder = trained_tasks["token_classification"]
    set_seed(seed)
    dls = base.datasets.dataloaders(batch_size=8)
    return get_task("token_classification").tuner(dls, str(folder), work_dir=work_dir)


def _ctrl_c_after(epochs_done: int) -> Any:
    from fastai.callback.core import Callback

    class CtrlC(Callback):
        order = 99  # after the checkpoint of the epoch is written

        def after_epoch(self) -> None:
            if self.epoch + 1 == epochs_done:
                os.kill(os.getpid(), signal.SIGINT)

    return CtrlC()


def _weights(tuner: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tuner.model.state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(trained_tasks, tmp_path_factory) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    tuner = _fresh(trained_tasks, tmp_path_factory.mktemp("full"))
    tuner.tune(EPOCHS, lr=2e-3, checkpoint_every=1)
    assert tuner.checkpoint_path.is_file()
    return _weights(tuner), tuner.history()


def test_ctrl_c_keeps_the_last_checkpoint_and_a_resumed_run_ends_as_the_uninterrupted_one(
    uninterrupted, trained_tasks, tmp_path, caplog
) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # no earlier test left its own handler
    full, full_history = uninterrupted
    stopped = _fresh(trained_tasks, tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="adapt"), pytest.raises(KeyboardInterrupt):
        stopped.tune(EPOCHS, lr=2e-3, checkpoint_every=1, callbacks=[_ctrl_c_after(2)])
    assert f"the last checkpoint is {stopped.checkpoint_path}" in caplog.text and "resume_from=" in caplog.text
    assert not [p for p in stopped.checkpoint_path.parent.iterdir() if p.name != "last.pt"]  # no partial files
    partway = _weights(stopped)
    assert any(not torch.equal(partway[k], full[k]) for k in full)  # the interrupted run is not already the end

    resumed = _fresh(trained_tasks, tmp_path / "again", seed=1234)  # another seed: everything comes from the file
    resumed.tune(EPOCHS, resume_from=stopped.checkpoint_path.parent, checkpoint_every=1)
    got = _weights(resumed)
    for key, want in full.items():
        assert torch.allclose(got[key], want, atol=1e-6), key
    history = resumed.history()
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert history[-1]["valid_loss"] == pytest.approx(full_history[-1]["valid_loss"], rel=1e-5)
    assert history[0]["valid_loss"] == pytest.approx(full_history[0]["valid_loss"], rel=1e-5)
    from adapt.checkpoint import read

    rows = read(resumed.checkpoint_path)["values"]  # a checkpoint of the resumed run keeps the earlier rows too
    assert len(rows) == EPOCHS and all(len(row) >= 3 for row in rows), rows


def test_a_resume_must_repeat_the_run_and_checkpoints_need_a_work_dir(uninterrupted, trained_tasks, tmp_path) -> None:
    tuner = _fresh(trained_tasks, tmp_path / "a")
    tuner.tune(1, lr=2e-3, checkpoint_every=1)
    with pytest.raises(InvalidInputError, match=r"epochs=1, but this call has epochs=2"):
        _fresh(trained_tasks, tmp_path / "b").tune(2, lr=2e-3, resume_from=tuner.checkpoint_path)
    with pytest.raises(InvalidInputError, match="no checkpoint there"):
        tuner.tune(1, resume_from=tmp_path / "nothing")
    with pytest.raises(InvalidInputError, match="work_dir="):
        _fresh(trained_tasks, None).tune(1, lr=2e-3, checkpoint_every=1)
    with pytest.raises(InvalidInputError, match="positive integer"):
        tuner.tune(1, lr=2e-3, checkpoint_every=0)
    n_batches, n = len(tuner.dls.train), len(tuner.dls.train.dataset)
    split = [k for k in range(2, n_batches + 2) if n % (8 * k)]  # fastai accumulates k full batches of samples
    odd = next((k for k in split if n_batches % k == 0), split[0])  # the last batch is short: k batches can split
    with pytest.raises(InvalidInputError, match=f"accumulate={odd} need epochs of whole optimizer steps: {n} "):
        tuner.tune(1, lr=2e-3, checkpoint_every=1, accumulate=odd)
    tuner.dls.train.drop_last = True  # a loader that drops its short last batch: whole batches are what counts
    try:
        check_whole_steps(tuner.dls.train, next(k for k in range(1, n_batches) if (n // 8) % k == 0 and n % (8 * k)))
    finally:
        tuner.dls.train.drop_last = False
    frozen = _fresh(trained_tasks, tmp_path / "frozen")
    frozen.freeze()
    with pytest.raises(InvalidInputError, match=r"frozen_groups=0, but this call has frozen_groups=[1-9]"):
        frozen.tune(1, lr=2e-3, resume_from=tuner.checkpoint_path)
    with pytest.raises(InvalidInputError, match="keep_best or early_stopping"):
        tuner.tune(1, lr=2e-3, resume_from=tuner.checkpoint_path, keep_best=True)
    spec_mismatch = get_task("token_classification").tuner(tuner.dls, str(trained_tasks["token_classification"][1]),
                                                           work_dir=tmp_path / "c", peft="lora")
    with pytest.raises(InvalidInputError, match="does not fit this tuner"):
        spec_mismatch.tune(1, resume_from=tuner.checkpoint_path)


def test_adapt_tune_checkpoints_and_resumes(task_files, tiny_models, tmp_path, capsys, caplog) -> None:
    import json

    from .contract_utils import run_cli

    args = ["tune", str(task_files / "cls.csv"), "--model", str(tiny_models["bert"]), "--max-length", "32",
            "--lr", "1e-3", "--epochs", "2", "--work-dir", str(tmp_path / "work")]
    code, out, err = run_cli(capsys, *args, "--out", str(tmp_path / "a"), "--checkpoint-every", "1")
    assert code == 0, err
    checkpoint = tmp_path / "work" / "checkpoints" / "last.pt"
    assert checkpoint.is_file()
    with caplog.at_level(logging.INFO, logger="adapt"):
        code, again, err = run_cli(capsys, *args, "--out", str(tmp_path / "b"), "--resume", str(checkpoint))
    assert code == 0 and "after epoch 2 of 2" in caplog.text, err
    assert json.loads(again)["metrics"] == pytest.approx(json.loads(out)["metrics"])
    code, _, err = run_cli(capsys, *args[:-4], "--epochs", "3", "--out", str(tmp_path / "c"), "--resume", str(checkpoint))
    assert code == 2 and "epochs=2, but this call has epochs=3" in err and len(err.strip().splitlines()) == 1, err
    assert f"--resume {checkpoint} continues" in err and "resume_from" not in err, err  # the CLI's own wording
    code, _, err = run_cli(capsys, *args[:-2], "--out", str(tmp_path / "d"), "--checkpoint-every", "1")
    assert code == 2 and "--checkpoint-every needs --work-dir" in err, err


def test_a_flat_cos_run_resumes_its_schedule_and_its_trackers(trained_tasks, tmp_path) -> None:
    """fastai's `fit_flat_cos` ignores `start_epoch`; adapt's resume continues the schedule. The CSV history of the
    resumed run continues the interrupted one's, and TensorBoard's events of the interrupted run are written out."""
    import pandas as pd

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    full = _fresh(trained_tasks, tmp_path / "full")
    full.tune(EPOCHS, lr=2e-3, strategy="flat_cos")
    stopped = _fresh(trained_tasks, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        stopped.tune(EPOCHS, lr=2e-3, strategy="flat_cos", checkpoint_every=1, report_to=["csv", "tensorboard"],
                     callbacks=[_ctrl_c_after(2)])
    assert len(EventAccumulator(str(tmp_path / "run" / "runs")).Reload().Scalars("valid_loss")) == 2
    resumed = _fresh(trained_tasks, tmp_path / "run", seed=99)
    resumed.tune(EPOCHS, strategy="flat_cos", resume_from=stopped.checkpoint_path, report_to=["csv", "tensorboard"])
    steps = [e.step for e in EventAccumulator(str(tmp_path / "run" / "runs")).Reload().Scalars("valid_loss")]
    assert len(steps) == EPOCHS and steps == sorted(set(steps)), steps  # the resumed steps continue, none overlap
    want = _weights(full)
    for key, got in _weights(resumed).items():
        assert torch.allclose(got, want[key], atol=1e-6), key
    table = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(table.epoch) == [0, 1, 2], table
    assert table.valid_loss.tolist() == pytest.approx([row["valid_loss"] for row in full.history()], rel=1e-4)


def test_an_interrupted_checkpoint_write_keeps_the_previous_checkpoint(trained_tasks, tmp_path, monkeypatch) -> None:
    from adapt import checkpoint

    tuner = _fresh(trained_tasks, tmp_path / "work")
    tuner.tune(1, lr=2e-3, checkpoint_every=1)
    path = tuner.checkpoint_path

    def half_written(obj: Any, f: Any) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.write(path, tuner.learn, 2, {"epochs": 1})
    monkeypatch.undo()
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no partial file left beside it
    assert checkpoint.read(path)["epoch"] == 1


def test_optimizer_state_goes_to_its_parameters_device() -> None:
    """fastai's `load_state_dict` keeps the (CPU-read) states where they are; on a GPU they must follow the
    parameters. The meta device stands in for a GPU here."""
    from fastai.optimizer import Adam

    from adapt.checkpoint import _on_devices

    opt = Adam([torch.nn.Parameter(torch.empty(3, device="meta"))], lr=1e-3)
    (state,) = _on_devices([{"grad_avg": torch.zeros(3), "step": 4}], opt)
    assert state["grad_avg"].device.type == "meta" and state["step"] == 4


def test_a_resumed_csv_history_without_the_interrupted_runs_file_comes_from_the_checkpoint(tmp_path) -> None:
    from adapt.tracking import _kept_rows

    header = "epoch,train_loss,valid_loss,time"
    path = tmp_path / "history.csv"
    earlier = [[0.9, 0.8], [0.7, 0.6]]
    assert _kept_rows(path, header, 2, earlier) == ["0,0.9,0.8,", "1,0.7,0.6,"]  # no file: the checkpoint's rows
    path.write_text("epoch,loss\n0,5\n", encoding="utf-8")  # another run's table
    assert _kept_rows(path, header, 2, earlier) == ["0,0.9,0.8,", "1,0.7,0.6,"]
    path.write_text(f"{header}\n0,0.9,0.8,00:01\n1,0.7,0.6,00:01\n2,0.5,0.4,00:01\n", encoding="utf-8")
    assert _kept_rows(path, header, 2, earlier) == ["0,0.9,0.8,00:01", "1,0.7,0.6,00:01"]  # past the checkpoint: cut


def test_a_tracker_that_fails_to_close_is_logged_not_raised(tmp_path, caplog) -> None:
    from adapt.tracking import Trackers

    class Broken:
        class writer:  # stands in for TensorBoard's SummaryWriter
            @staticmethod
            def close() -> None:
                raise OSError("No space left on device")

    tracked = Trackers([], tmp_path, {})
    tracked.callbacks.append(Broken())
    with caplog.at_level(logging.WARNING, logger="adapt"):
        tracked.close()
    assert "could not close the TensorBoard writer: OSError: No space left on device" in caplog.text


def _resume_with_a_checkpoint(tuner: Any) -> Any:
    """A run's `Resume` after its first checkpoint was written."""
    from types import SimpleNamespace

    from adapt.checkpoint import Resume

    resume = Resume(tuner.checkpoint_path, 1, None, True)
    resume.callback = SimpleNamespace(written=1)
    return resume


def test_after_ctrl_c_the_cli_is_told_its_own_resume_option(trained_tasks, tmp_path, caplog) -> None:

    from adapt.errors import cli_names

    tuner = _fresh(trained_tasks, tmp_path / "work")
    for names, wanted, unwanted in (({}, "resume_from=", "--resume"), ({"resume_from": "--resume"}, "--resume ", "resume_from")):
        caplog.clear()
        with (caplog.at_level(logging.WARNING, logger="adapt"), cli_names(names), pytest.raises(KeyboardInterrupt),
              _resume_with_a_checkpoint(tuner).interrupts()):
            raise KeyboardInterrupt
        assert wanted in caplog.text and unwanted not in caplog.text, caplog.text
