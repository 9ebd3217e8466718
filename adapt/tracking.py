"""Experiment tracking for `tune(report_to=...)`: fastai's callbacks with settings that work for text models, and
the run's hyper-parameters and training record written where each tracker keeps them.

- `"csv"`: `history.csv` in the work folder: fastai `CSVLogger`'s table (a header, then a row per epoch as it
  ends), written line by line with nothing held open; a resumed run keeps the rows of the epochs it continues from.
- `"tensorboard"`: event files in `work_dir/runs` (`TensorBoardCallback`, without its vision-only prediction and
  graph logging, which crashed on text), plus the hyper-parameters (`add_hparams`) and the training record (a text
  summary, `adapt/training_record`).
- `"wandb"`: a W&B run that gets the metrics table every epoch (and the loss and LR every batch), whose config
  holds the hyper-parameters and the training record, and whose summary holds the final metrics; files go to
  `work_dir/wandb`. `WANDB_MODE=offline` works without a network. adapt starts a run when none is active, and
  finishes the runs it started.

None of the trackers is a dependency of adapt; a missing one is a `MissingDependencyError` naming the install.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidChoiceError, MissingDependencyError, TrackerError, unknown_name

if TYPE_CHECKING:
    from .tuner import Tuner

TRACKERS = ("csv", "tensorboard", "wandb")
logger = logging.getLogger(__name__)


def parse(report_to: str | Sequence[str] | None) -> tuple[str, ...]:
    """`report_to` as checked tracker names (one or a list; none for None)."""
    names = tuple(t.lower() for t in ([report_to] if isinstance(report_to, str) else report_to or ()))
    for name in names:
        if name not in TRACKERS:
            raise InvalidChoiceError(unknown_name("report_to", name, TRACKERS))
    return names


class Trackers:
    """The trackers of one `tune` call: their fastai callbacks (`callbacks`), `finish` with the training record,
    and `close` however the call ended (Ctrl-C included). Only the main process of a data-parallel run tracks; a
    resumed run does not log the epochs it skips again."""

    def __init__(self, names: Sequence[str], work_dir: Path, hparams: dict[str, Any], start_epoch: int = 0,
                 main: bool = True, earlier: Sequence[Sequence[Any]] = ()) -> None:
        """`earlier`: on resume, the metrics rows (the Recorder's values) of the epochs before `start_epoch`."""
        self.names, self.work_dir = tuple(names) if main else (), work_dir
        self.started_wandb = False
        self.callbacks: list[Any] = []
        if "csv" in self.names:
            self.callbacks.append(_csv_history(work_dir / "history.csv", start_epoch, earlier))
        if "tensorboard" in self.names:
            self.callbacks.append(_tensorboard(work_dir, start_epoch))
        if "wandb" in self.names:
            self.started_wandb = _wandb_run(work_dir, hparams)
            self.callbacks.append(_wandb_metrics(start_epoch))

    def finish(self, hparams: dict[str, Any], record: dict[str, Any]) -> None:
        """Write the hyper-parameters and the training record where each tracker keeps them."""
        final = (record.get("history") or [{}])[-1]
        metrics = {k: v for k, v in final.items() if isinstance(v, int | float) and not isinstance(v, bool) and k != "epoch"}
        if "tensorboard" in self.names:
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(log_dir=str(self.work_dir / "runs")) as writer:
                writer.add_text("adapt/training_record", "```json\n" + json.dumps(record, indent=2) + "\n```")
                writer.add_hparams(_flat(hparams), {f"hparam/{k}": v for k, v in metrics.items()}, run_name="hparams")
        if "wandb" in self.names:
            import wandb

            if wandb.run is not None:
                wandb.run.config.update({"training_record": record}, allow_val_change=True)
                wandb.run.summary.update(metrics)

    def close(self) -> None:
        """End what this call opened: TensorBoard's writer (fastai closes it only after a fit that completes) and
        the W&B run it started. A tracker failing to close is logged, not raised over the call's own outcome."""
        for cb in self.callbacks:
            writer = getattr(cb, "writer", None)
            if writer is not None:
                _closing("TensorBoard writer", writer.close)
        if self.started_wandb:
            import wandb

            _closing("W&B run", wandb.finish)
            self.started_wandb = False


def _closing(what: str, close: Any) -> None:
    try:
        close()
    except Exception as e:  # a full disk or a lost network at the end must not hide how the run ended
        logger.warning("could not close the %s: %s: %s", what, type(e).__name__, e)


def _csv_history(path: Path, start_epoch: int, earlier: Sequence[Sequence[Any]]) -> Any:
    """A callback writing the metrics table to `path` as each epoch ends. On resume the file starts with the rows
    of the first `start_epoch` epochs: the interrupted run's own lines when the file holds them, else rebuilt from
    the checkpoint's `earlier` values (without their times). Each write opens and closes the file, so an interrupt
    leaves no handle behind. (fastai's `CSVLogger` holds the file open, repeats its header when appending, and
    logs a blank row for each epoch a resume skips.)"""
    from fastai.callback.core import Callback
    from fastai.learner import Recorder
    from fastcore.basics import noop

    class CSVHistory(Callback):
        order = Recorder.order + 1  # after the Recorder has the epoch's values

        def before_fit(self) -> None:
            header = ",".join(self.recorder.metric_names)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([header, *_kept_rows(path, header, start_epoch, earlier)]) + "\n",
                            encoding="utf-8")

        def after_epoch(self) -> None:
            if self.epoch < start_epoch or self.learn.logger is noop:  # skipped on resume; a validate() inside fit
                return
            with open(path, "a", encoding="utf-8") as f:
                f.write(",".join(str(v) for v in self.recorder.log) + "\n")

    return CSVHistory()


def _kept_rows(path: Path, header: str, start_epoch: int, earlier: Sequence[Sequence[Any]]) -> list[str]:
    """The first `start_epoch` lines of the table: the file's when it is this table's, else from `earlier`."""
    if not start_epoch:
        return []
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    rows = lines[1:start_epoch + 1]
    if lines and lines[0] == header and [r.split(",", 1)[0] for r in rows] == [str(i) for i in range(start_epoch)]:
        return rows
    return [",".join(str(v) for v in [i, *values, ""]) for i, values in enumerate(earlier[:start_epoch])]


def _tensorboard(work_dir: Path, start_epoch: int) -> Any:
    """fastai's `TensorBoardCallback` without its vision-only logging; a resumed run's steps continue the
    interrupted run's (fastai counts `train_iter` from 0 in every fit)."""
    try:
        from fastai.callback.tensorboard import TensorBoardCallback
    except ImportError as e:
        raise MissingDependencyError("report_to='tensorboard' needs tensorboard: pip install tensorboard.") from e

    class TensorBoard(TensorBoardCallback):
        skipped_steps = 0

        def before_fit(self) -> None:
            self.skipped_steps = start_epoch * len(self.learn.dls.train)  # this rank's batches per epoch
            super().before_fit()

        @property
        def train_iter(self) -> int:  # the step TensorBoardCallback logs at
            return int(self.learn.train_iter) + self.skipped_steps

    return TensorBoard(log_dir=work_dir / "runs", trace_model=False, log_preds=False)


def _wandb_run(work_dir: Path, hparams: dict[str, Any]) -> bool:
    """Start a W&B run unless one is active (its config gets the hyper-parameters); True when this started it."""
    try:
        import wandb
    except ImportError as e:
        raise MissingDependencyError("report_to='wandb' needs wandb: pip install wandb (WANDB_MODE=offline "
                                     "works without an account or a network).") from e
    if wandb.run is not None:
        wandb.run.config.update(_flat(hparams), allow_val_change=True)
        return False
    try:
        wandb.init(project=os.environ.get("WANDB_PROJECT", "adapt"), dir=str(work_dir), config=_flat(hparams))
    except Exception as e:  # no API key without a terminal, no network, a bad setting
        raise TrackerError(f"report_to='wandb' could not start a W&B run ({type(e).__name__}: {str(e)[:300]}). "
                           "Run `wandb login`, or set WANDB_MODE=offline to log locally.") from e
    return True


def _wandb_metrics(start_epoch: int) -> Any:
    """A callback logging the metrics table to the active W&B run: each epoch's row, and the loss and LR of each
    training batch. (fastai's `WandbCallback` fails on a text Learner in `before_fit`, formatting its arguments.)"""
    import wandb
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class WandbMetrics(Callback):
        order = Recorder.order + 1  # after the Recorder has the epoch's values

        def after_batch(self) -> None:
            if self.training and not hasattr(self.learn, "lr_finder") and self.epoch >= start_epoch:
                wandb.log({"batch/train_loss": float(self.learn.smooth_loss), "batch/lr": self.opt.hypers[-1]["lr"]})

        def after_epoch(self) -> None:
            if hasattr(self.learn, "lr_finder") or self.epoch < start_epoch:  # skipped on resume
                return
            names, values = self.recorder.metric_names[1:-1], self.recorder.log[1:-1]
            wandb.log({"epoch": self.epoch, **{n: float(v) for n, v in zip(names, values, strict=False)}})

    return WandbMetrics()


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as scalars and strings (what TensorBoard's hparams and W&B's config show as columns)."""
    return {k: v if isinstance(v, int | float | str | bool) else json.dumps(v, default=str)
            for k, v in values.items() if v is not None}


def recorded_history(recorder: Any) -> list[dict[str, float]]:
    """The Recorder's metrics table as rows: `{"epoch": i, "train_loss": ..., "valid_loss": ..., <metrics>}`."""
    names = [n for n in recorder.metric_names if n not in ("epoch", "time")]
    return [{"epoch": i, **{n: float(v) for n, v in zip(names, vals, strict=False) if v is not None}}
            for i, vals in enumerate(recorder.values)]


def recorded_losses(recorder: Any) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(training loss per batch, validation loss at each epoch's last batch) for the loss plot."""
    names = list(recorder.metric_names[1:-1])  # the values' columns: no epoch, no time
    valid = names.index("valid_loss") if "valid_loss" in names else None
    train = [(i, float(v)) for i, v in enumerate(recorder.losses)]
    ends = [int(i) for i in recorder.iters]
    points = [(ends[k], float(vals[valid])) for k, vals in enumerate(recorder.values)
              if valid is not None and k < len(ends) and valid < len(vals) and vals[valid] is not None]
    return train, points


def mark_best(history: list[dict[str, Any]], monitor: str) -> None:
    """Mark the epoch whose weights `keep_best` restored (the best value of `monitor`) in `history`."""
    from .fitting import lower_is_better

    values = [(row[monitor], row["epoch"]) for row in history if monitor in row and not math.isnan(row[monitor])]
    if not values:
        return
    lower = lower_is_better(monitor)  # on a tie the earlier epoch wins: SaveModelCallback keeps only improvements
    best = min(values, key=lambda ve: (ve[0] if lower else -ve[0], ve[1]))[1]
    for row in history:
        row["best"] = row["epoch"] == best


def training_record(kept: str | None, check: Callable[[], str | None], trackers: Trackers, settings: dict[str, Any],
                    hparams: dict[str, Any]) -> Any:
    """The fastai callback that keeps the record of a `tune` call: the metrics table and losses as each epoch ends,
    and at the end of the fit the epoch `keep_best` kept (`kept`: its monitor). It runs after every other callback
    of the fit (the Recorder, the checkpoint's row fix-ups, the task's own). `finish()`, once the fit has returned,
    adds `check()`'s warning about what the model learned and hands the record to the trackers: a check that
    validates cannot run inside the fit, where fastai's `get_preds` would fire every fit callback's `after_fit` again."""
    from fastai.callback.core import Callback

    class TrainingRecord(Callback):
        order = 99

        def __init__(self) -> None:
            self.history: list[dict[str, Any]] = []
            self.losses: tuple[list[tuple[int, float]], list[tuple[int, float]]] = ([], [])
            self.trackers, self.start = trackers, time.perf_counter()

        def before_fit(self) -> None:
            self.start = time.perf_counter()

        def after_epoch(self) -> None:
            self._snapshot()

        def after_cancel_fit(self) -> None:  # early stopping ends the epoch before this callback sees it
            self._snapshot()

        def _snapshot(self) -> None:  # now: get_preds and validate (threshold tuning, checks) reset the Recorder
            self.history, self.losses = recorded_history(self.recorder), recorded_losses(self.recorder)

        def after_fit(self) -> None:
            if kept is not None:
                mark_best(self.history, kept)

        def finish(self) -> tuple[list[dict[str, Any]], Any, dict[str, Any]]:
            """(history, losses, the training record), the record also written by the trackers."""
            warning = check()
            record = {**settings, **_outcome(self.history, time.perf_counter() - self.start),
                      "warnings": [warning] if warning else []}
            trackers.finish(hparams, record)
            return self.history, self.losses, record

    return TrainingRecord()


def _outcome(history: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from .fitting import finite
    from .utils import last_seed

    return {"history": [{k: finite(v) for k, v in row.items()} for row in history], "epochs_run": len(history),
            "best_epoch": next((int(row["epoch"]) for row in history if row.get("best")), None),
            "seed": last_seed(), "elapsed_s": round(seconds, 1)}


def tune_record(tuner: Tuner, run: dict[str, Any], trackers: Sequence[str], start_epoch: int,
                resumed: dict[str, Any] | None, given: Any, kept: str | None) -> Any:
    """The training-record callback of a `tune` call (`training_record`) with its trackers: `run` holds the run's
    settings, `given` the `lr` passed, `kept` the monitor of `keep_best`."""
    from .distributed import is_main_process
    from .fitting import lr_json

    if is_main_process():
        logger.info("tune: %d epoch(s), %s, lr %s", run["epochs"], run["strategy"], lr_json(run["lr"]))
    hparams = {**_hparams(tuner, run["accumulate"]), **run}
    earlier = (resumed or {}).get("values", [])[:start_epoch]
    tracked = Trackers(trackers, Path(tuner.learn.path), hparams, start_epoch, main=is_main_process(), earlier=earlier)
    return training_record(kept, lambda: learning_check(tuner), tracked, _settings(tuner, run, given), hparams)


def _hparams(tuner: Tuner, accumulate: int) -> dict[str, Any]:
    """The run's settings as trackers record them (the rest of the record follows when it ends)."""
    return {"task": tuner.spec.name, "base_model": tuner._base_model_id()[0],
            "batch_size": getattr(tuner.dls.train, "bs", None), "accumulate": accumulate,
            "max_length": getattr(tuner.datasets, "max_length", None),
            "adapter": tuner.manifest().get("adapter", {}).get("type") if tuner.is_adapter else None}


def _settings(tuner: Tuner, run: dict[str, Any], given: Any) -> dict[str, Any]:
    """What `adapt.json` and the model card keep of a `tune` call's settings (the record adds what it did)."""
    from .fitting import lr_json
    from .versions import __version__

    found = tuner.lr_suggestion
    passed_back = found is not None and isinstance(given, float) and float(given) == float(found)
    suggestion = given if hasattr(given, "reason") else found if given is None or passed_back else None
    base, local = tuner._base_model_id()
    return {"base_model": base, "base_model_is_local": local, "epochs": run["epochs"], "strategy": run["strategy"],
            "lr": lr_json(given), "lr_chosen": lr_json(run["lr"]), "lr_reason": getattr(suggestion, "reason", None),
            "batch_size": run["batch_size"], "max_length": run["max_length"], "train_size": len(tuner.dls.train.dataset),
            "valid_size": len(tuner.dls.valid.dataset), "adapt_version": __version__}


def learning_check(tuner: Tuner) -> str | None:
    """The tuner's `_learning_warning` (the model learned nothing useful), on every rank (data-parallel validation
    is sharded: each must take part) and logged by the main one; a check that cannot run is logged, never raised
    over a finished run."""
    from .distributed import is_main_process

    if not len(tuner.dls.valid.dataset):
        return None
    try:
        warning = tuner._learning_warning()
    except Exception as e:  # the run itself succeeded: its weights and record must not be lost to the check
        logger.warning("could not check what the model learned (%s: %s)", type(e).__name__, e)
        return None
    if warning and is_main_process():
        logger.warning("%s", warning)
    return warning
