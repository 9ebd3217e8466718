"""How a `tune` call runs on fastai: its argument checks, the fastai callbacks its keywords ask for, and the fit
policy each `Strategy` names. Every function takes the fastai `Learner`; none knows about the Tuner."""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .enums import Strategy
from .errors import InvalidChoiceError, InvalidInputError, is_count, is_number, unknown_name

logger = logging.getLogger(__name__)

__all__ = ["check_fit_kwargs", "check_lr", "fit", "fit_callbacks", "lower_is_better", "lr_json", "sgdr_cycles"]

POLICIES = {Strategy.OneCycle: "fit_one_cycle", Strategy.CosineAnnealing: "fit_flat_cos", Strategy.SGDR: "fit_sgdr"}


def load_fastai_extensions() -> None:
    """Import the fastai modules that add fit policies, progress tables and mixed precision to `Learner`."""
    for mod in ("fastai.callback.schedule", "fastai.callback.progress", "fastai.callback.fp16", "fastai.callback.tracker"):
        importlib.import_module(mod)


def line_progress(learn: Any) -> None:
    """fastai's progress bars in a terminal or notebook, plain epoch lines in a log (`LineProgressCallback`)."""
    from .engine import LineProgressCallback

    if hasattr(learn, "progress"):
        learn.remove_cb(learn.progress)
        learn.add_cb(LineProgressCallback())


def sgdr_cycles(epochs: int) -> tuple[int, int]:
    """(n_cycles, cycle_len) for `fit_sgdr(..., cycle_mult=2)` that add up to exactly `epochs`.

    Uses the most cycles `n` for which `2**n - 1` divides `epochs`: 3 -> (2, 1), 7 -> (3, 1), 6 -> (2, 2), 5 -> (1, 5).
    """
    best = 1
    n = 1
    while 2**n - 1 <= epochs:
        if epochs % (2**n - 1) == 0:
            best = n
        n += 1
    return best, epochs // (2**best - 1)


def check_lr(lr: Any) -> None:
    """`lr` must be None (find one), a positive number, a `slice` of positive numbers or a list of them."""
    values = [lr.start, lr.stop] if isinstance(lr, slice) else list(lr) if isinstance(lr, (list, tuple)) else [lr]
    if lr is None:
        return
    for v in values:
        if v is None and isinstance(lr, slice):
            continue
        if not (is_number(v) and math.isfinite(v) and v > 0):
            raise InvalidInputError(
                f"lr must be a positive number, a slice(lo, hi) of them, or None to run the LR finder; got {lr!r}."
            )


def check_epochs(epochs: Any) -> None:
    if not is_count(epochs):
        raise InvalidInputError(f"epochs must be a positive integer (total epochs), got {epochs!r}.")


def lower_is_better(metric: str) -> bool:
    """Losses, perplexity and error rates (regression's mse, rmse, mae) improve downwards; every other metric upwards."""
    name = metric.lower()
    return any(word in name for word in ("loss", "perplexity", "error")) or name in ("mse", "rmse", "mae")


def finite(value: Any) -> Any:
    """NaN and infinities as None: `adapt.json` must be JSON that any reader parses."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def lr_json(lr: Any) -> Any:
    """A learning rate as JSON: a number, `[lo, hi]` for a slice, a list per layer group, or None."""
    if lr is None:
        return None
    if isinstance(lr, slice):
        return [lr_json(lr.start), lr_json(lr.stop)]
    if isinstance(lr, (list, tuple)) or hasattr(lr, "tolist"):
        values = lr.tolist() if hasattr(lr, "tolist") else list(lr)
        return [float(v) for v in values] if isinstance(values, list) else float(values)
    return float(lr)


def metric_names(learn: Any) -> list[str]:
    """The columns of the metrics table a `monitor` may name."""
    return ["train_loss", "valid_loss", *(getattr(m, "name", str(m)) for m in learn.metrics)]


def fit_callbacks(learn: Any, accumulate: int, monitor: str | None, early_stopping: int | None, keep_best: bool) -> list[Any]:
    """fastai's callbacks for `tune`'s `accumulate`, `keep_best` and `early_stopping` (after checking them)."""
    import numpy as np
    from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
    from fastai.callback.training import GradientAccumulation

    if not is_count(accumulate):
        raise InvalidInputError(f"accumulate must be a positive integer (batches per optimizer step), got {accumulate!r}.")
    if early_stopping is not None and not is_count(early_stopping):
        raise InvalidInputError(f"early_stopping is a patience in epochs (a positive integer), got {early_stopping!r}.")
    names = metric_names(learn)
    if monitor is not None and monitor not in names:
        raise InvalidChoiceError(unknown_name("monitor", monitor, names, "this tuner's metrics"))
    watch = monitor or "valid_loss"
    comp = np.less if lower_is_better(watch) else np.greater  # fastai guesses from the name: not "perplexity"
    cbs: list[Any] = []
    if accumulate > 1:
        bs = int(getattr(learn.dls.train, "bs", 1))
        logger.info("accumulating %d batches of %d: an effective batch of %d", accumulate, bs, accumulate * bs)
        cbs.append(GradientAccumulation(n_acc=accumulate * bs))
    if keep_best:
        cbs.append(SaveModelCallback(monitor=watch, comp=comp, fname="best", with_opt=False))
    if early_stopping is not None:
        cbs.append(EarlyStoppingCallback(monitor=watch, comp=comp, patience=early_stopping))
    return cbs


def check_fit_kwargs(learn: Any, strategy: Strategy, fit_kwargs: dict[str, Any], tune: Callable[..., Any]) -> None:
    """Refuse a keyword neither `tune` nor the strategy's fastai policy takes (`early_stop=2`), before training,
    naming the closest one; fastai would raise a bare TypeError after the LR search."""
    own = {"n_epoch", "n_cycles", "cycle_len", "cycle_mult", "lr", "lr_max", "cbs", "self", "start_epoch"}
    takes = [n for n in inspect.signature(getattr(learn, POLICIES.get(strategy, "fit"))).parameters if n not in own]
    tune_own = [n for n, p in inspect.signature(tune).parameters.items() if p.kind is p.KEYWORD_ONLY]
    for name in fit_kwargs:
        if name not in takes and name != "start_epoch":
            raise InvalidChoiceError(unknown_name("tune() keyword", name, [*tune_own, *takes], f"strategy {strategy.value}"))


def fit(learn: Any, epochs: int, lr: Any, strategy: Strategy, cbs: Any, **fit_kwargs: Any) -> None:
    """Run the fastai policy `strategy` names (SGDR in cycles adding up to `epochs`)."""
    if not fit_kwargs.get("start_epoch"):
        fit_kwargs.pop("start_epoch", None)  # as before for fit methods and callers that do not know it
    if strategy is Strategy.OneCycle:
        learn.fit_one_cycle(epochs, lr_max=lr, cbs=cbs, **fit_kwargs)
    elif strategy is Strategy.CosineAnnealing:
        fit_flat_cos(learn, epochs, lr, cbs, **fit_kwargs)
    elif strategy is Strategy.SGDR:
        n_cycles, cycle_len = sgdr_cycles(epochs)
        learn.fit_sgdr(n_cycles, cycle_len, lr_max=lr, cycle_mult=2, cbs=cbs, **fit_kwargs)
    else:
        learn.fit(epochs, lr=lr, cbs=cbs, **fit_kwargs)


def fit_flat_cos(learn: Any, epochs: int, lr: Any, cbs: Any, div_final: float = 1e5, pct_start: float = 0.75,
                 start_epoch: int = 0, **fit_kwargs: Any) -> None:
    """fastai's `fit_flat_cos` policy (flat `lr`, then cosine annealing to `lr / div_final`), with its
    `start_epoch` honoured: `Learner.fit_flat_cos` accepts it but always starts at 0 (fastai 2.8)."""
    if start_epoch == 0:
        learn.fit_flat_cos(epochs, lr=lr, cbs=cbs, div_final=div_final, pct_start=pct_start, **fit_kwargs)
        return
    import numpy as np
    from fastai.callback.schedule import ParamScheduler, combined_cos
    from fastcore.foundation import L

    if learn.opt is None:
        learn.create_opt()
    learn.opt.set_hyper("lr", learn.lr if lr is None else lr)
    lrs = np.array([h["lr"] for h in learn.opt.hypers])
    scheds = {"lr": combined_cos(pct_start, lrs, lrs, lrs / div_final)}
    learn.fit(epochs, cbs=ParamScheduler(scheds) + L(cbs), start_epoch=start_epoch, **fit_kwargs)


def frozen_groups(learn: Any) -> int:
    """How many layer groups `freeze`/`freeze_to` froze (0: none)."""
    return int(getattr(learn.opt, "frozen_idx", 0) or 0)


def run_settings(learn: Any, datasets: Any, epochs: int, strategy: Strategy, lr: Any, accumulate: int) -> dict[str, Any]:
    """What a run is: the settings a resume must repeat, and the trackers' hyper-parameters."""
    train = learn.dls.train
    return {"epochs": epochs, "strategy": strategy.value, "lr": lr if isinstance(lr, slice) else lr_json(lr),
            "accumulate": accumulate, "batch_size": getattr(train, "bs", None), "train_size": getattr(train, "n", None),
            "max_length": getattr(datasets, "max_length", None), "frozen_groups": frozen_groups(learn)}


def work_dir(owner: object, folder: str | os.PathLike[str] | None) -> Path:
    """Where fastai writes its files (the LR finder's checkpoint, `SaveModelCallback`'s `models/*.pth`,
    `CSVLogger`'s history): `folder`, else a temporary folder removed with `owner`."""
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    tmp = tempfile.mkdtemp(prefix="adapt-work-")
    weakref.finalize(owner, shutil.rmtree, tmp, True)
    return Path(tmp)


def resolve_metrics(metrics: Any, available: Callable[[], dict[str, Any]], aliases: dict[str, str], who: str) -> Any:
    """Metric names (`"accuracy"`, `NERMetric.F1`, an alias) replaced by the task's metric (`available()`: name ->
    metric); metric objects pass as they are."""
    items = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    if not any(isinstance(m, str) for m in items):
        return metrics
    named = available()
    out = []
    for m in items:
        if not isinstance(m, str):
            out.append(m)
            continue
        name = aliases.get(str(m), str(m))
        if name not in named:
            raise InvalidChoiceError(unknown_name("metric", str(m), sorted(named) + sorted(aliases), who))
        out.append(named[name])
    # views of one shared validation scorer (QA, seq2seq): the first chosen view must be the one that collects
    views = [m for m in out if hasattr(m, "owner") and hasattr(m, "key")]
    for k, view in enumerate(views):
        view.owner = k == 0
    return out


def learner_kwargs(kwargs: dict[str, Any], own: set[str], who: str) -> dict[str, Any]:
    """The keywords besides a tuner's `own` options, which must be fastai `Learner` arguments."""
    from fastai.learner import Learner

    learner = [p for p in inspect.signature(Learner.__init__).parameters if p not in ("self", "dls", "model")]
    rest = {k: v for k, v in kwargs.items() if k not in own}
    unknown = sorted(set(rest) - set(learner))
    if unknown:
        accepted = sorted(own) + [f"fastai Learner's {p}" for p in learner]
        raise InvalidInputError(unknown_name("argument", unknown[0], accepted, who))
    return rest


def mixed_precision(learn: Any, device: Any, precision: str | None) -> Any:
    """`learn` training in `precision` ("fp16", "bf16"; None for fp32) on CUDA; elsewhere fp32, with a warning."""
    if precision is None:
        return learn
    mp = precision.lower()
    if mp not in ("fp16", "bf16"):
        raise InvalidChoiceError(f"mixed_precision must be None, 'fp16' or 'bf16', got {precision!r}.")
    if device.type != "cuda":
        warnings.warn(f"mixed_precision={mp!r} needs a CUDA device; training in fp32 on {device}.", stacklevel=4)
        return learn
    return learn.to_fp16() if mp == "fp16" else learn.to_bf16()


def checkpoint_gradients(model: Any) -> None:
    """The model's own gradient checkpointing: activations recomputed in the backward pass, less memory."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise InvalidInputError(
            f"{type(model).__name__} does not support gradient checkpointing; pass gradient_checkpointing=False."
        )
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if getattr(model.config, "use_cache", False):
        model.config.use_cache = False  # a generation cache cannot be kept while activations are recomputed


def find_lr(learn: Any, start_lr: float, end_lr: float, num_it: int, hi: float) -> tuple[Any, list[float], list[float]]:
    """fastai's LR finder (weights restored after), and adapt's choice from its curve (`suggest_fine_tune_lr`, at
    most `hi`): (the `LRSuggestion`, the rates, the losses)."""
    from .engine import suggest_fine_tune_lr

    learn.lr_find(start_lr=start_lr, end_lr=end_lr, num_it=num_it, show_plot=False, suggest_funcs=None)
    rec = learn.recorder
    lrs, losses = [float(x) for x in rec.lrs], [float(x) for x in rec.losses]
    skip = num_it // 10
    trimmed = len(lrs) > skip + 10
    found = suggest_fine_tune_lr(lrs[skip:-5] if trimmed else lrs, losses[skip:-5] if trimmed else losses, hi=hi)
    return found, lrs, losses
