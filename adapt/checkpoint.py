"""Resumable training checkpoints: `tune(checkpoint_every=N)` writes one, `tune(resume_from=path)` continues it.

A checkpoint (`checkpoints/last.pt` under the tuner's `work_dir`) holds what an uninterrupted run would carry into
the next epoch: the weights, the optimizer's state and hyper-parameters, the epoch reached (the fit policy's
schedule restarts from there, as fastai's `start_epoch` does), the random states (Python, NumPy, torch, and the
training loader's shuffling) and the metrics table so far, plus the run's settings, which a resume must repeat.
It is written to a temporary file, fsynced and renamed over the previous one, so an interrupt (Ctrl-C) or a crash
at any moment leaves the last complete checkpoint.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import CorruptModelError, InvalidInputError, as_given, is_count
from .utils import fsync_path

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.pt"
FORMAT = 1


def _inner(obj: Any) -> Any:
    """The model or loader itself inside a data-parallel wrapper (DDP's `module`, fastai's DistributedDL `dl`)."""
    return getattr(obj, "module", None) or getattr(obj, "dl", None) or obj


def _rng_state(dl: Any) -> dict[str, Any]:
    """The random states, as tensors, numbers, strings, lists and tuples only (`torch.load(weights_only=True)`)."""
    import numpy as np
    import torch

    numpy_state: Any = np.random.get_state()
    kind, keys, pos, has_gauss, cached = numpy_state
    loader = _inner(dl).rng.getstate() if hasattr(_inner(dl), "rng") else None
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached),
             "torch": torch.get_rng_state(), "loader": loader}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], dl: Any) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("loader") is not None and hasattr(_inner(dl), "rng"):
        _inner(dl).rng.setstate(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    """Metric rows, learning rates and hyper-parameters as plain data: numbers, lists, dicts, and ("slice", lo, hi)
    for a slice."""
    if isinstance(value, slice):
        return ("slice", _plain(value.start), _plain(value.stop))
    if isinstance(value, (list, tuple)) or type(value).__name__ == "L":  # fastcore's L: the Recorder's rows
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy and torch scalars
        return value.item()
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "slice":
        return slice(value[1], value[2])
    return value


def _optimizer_state(opt: Any) -> dict[str, Any]:
    """fastai's optimizer state; its hyper-parameters as plain numbers (discriminative LRs are NumPy floats)."""
    sd = opt.state_dict()  # fastcore `L`s, which torch's safe loader refuses: plain lists here, `L`s on restore
    return {"state": [dict(s) for s in sd["state"]], "hypers": [_plain(dict(h)) for h in sd["hypers"]]}


def write(path: Path, learn: Any, epoch: int, run: dict[str, Any]) -> None:
    """Atomically write the checkpoint after `epoch` epochs of the run described by `run`."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "epoch": epoch, "run": {k: _plain(v) for k, v in run.items()},
        "model": _inner(learn.model).state_dict(), "opt": _optimizer_state(learn.opt),
        "rng": _rng_state(learn.dls.train), "values": _plain(learn.recorder.values),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C or a full disk mid-write: the previous checkpoint stays, no partial file
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)  # the rename itself survives a power loss


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by `write` (a folder means its `last.pt`); a specific error when it is not one.
    Read with `weights_only=True`: a checkpoint from elsewhere cannot run code."""
    import torch

    file = Path(path)
    file = file / CHECKPOINT_FILE if file.is_dir() else file
    if not file.is_file():
        raise InvalidInputError(f"{as_given('resume_from', str(path))}: no checkpoint there. "
                                f"{as_given('checkpoint_every', 1)} writes one to <work_dir>/checkpoints/{CHECKPOINT_FILE}.")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CorruptModelError(f"{str(file)!r} is not a readable adapt checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CorruptModelError(f"{str(file)!r} is not an adapt training checkpoint (format {FORMAT}).")
    state["run"] = {k: _unplain(v) for k, v in state["run"].items()}
    return state


def check_same_run(state: dict[str, Any], run: dict[str, Any], where: str) -> None:
    """A resume repeats the interrupted run's settings; name the first that differs."""
    for key, saved in state["run"].items():
        if run.get(key) != saved:
            raise InvalidInputError(f"{as_given('resume_from', where)} continues a run with {key}={saved!r}, but this call "
                                    f"has {key}={run.get(key)!r}; repeat the interrupted run's settings (or start a new run "
                                    "without it).")


def restore(state: dict[str, Any], learn: Any) -> int:
    """Load weights, optimizer and random states into `learn`; returns the epoch to start from."""
    try:
        learn.model.load_state_dict(state["model"])
        if learn.opt is None:
            learn.create_opt()
        from fastcore.foundation import L

        learn.opt.load_state_dict({"state": L(_on_devices(state["opt"]["state"], learn.opt)),
                                   "hypers": L(state["opt"]["hypers"])})
    except (RuntimeError, AssertionError, KeyError, ValueError) as e:
        raise InvalidInputError(
            "The checkpoint does not fit this tuner: it was written for another model, head, adapter or set of "
            f"trainable parameters ({type(e).__name__}: {str(e)[:300]}). Build the tuner as the interrupted run did."
        ) from e
    _set_rng_state(state["rng"], learn.dls.train)
    return int(state["epoch"])


def _on_devices(states: list[dict[str, Any]], opt: Any) -> list[dict[str, Any]]:
    """The optimizer's per-parameter states (read onto the CPU) on their parameters' devices, as fastai's
    `Optimizer.load_state_dict` does not move them."""
    params = [p for p, *_ in opt.all_params()]
    if len(params) != len(states):  # another model: `load_state_dict` says so
        return states
    return [{k: v.to(p.device) if hasattr(v, "to") else v for k, v in s.items()}
            for s, p in zip(states, params, strict=True)]


class Resume:
    """`tune(checkpoint_every=N, resume_from=path)`: the checks, the state read back and restored, the callback that
    writes checkpoints (and puts back the metrics rows of the epochs a resume skips), and what Ctrl-C says."""

    def __init__(self, path: Path, every: int | None, resume_from: Any, work_dir_given: bool) -> None:
        if every is not None and not is_count(every):
            raise InvalidInputError(f"checkpoint_every is a number of epochs (a positive integer), got {every!r}.")
        if every is not None and not work_dir_given:
            raise InvalidInputError(
                f"{as_given('checkpoint_every')} needs a folder that outlives this process: build the tuner with "
                "work_dir=... (the checkpoint goes to <work_dir>/checkpoints/last.pt)."
            )
        self.path, self.every, self.resume_from = path, every, resume_from
        self.state: dict[str, Any] | None = None
        self.callback: Any = None

    @property
    def active(self) -> bool:
        return self.every is not None or self.resume_from is not None

    def check(self, learn: Any, accumulate: int, tracks_best: bool) -> None:
        """Refuse what a checkpoint could not carry, then read the one to resume from."""
        if self.active and accumulate > 1:
            check_whole_steps(learn.dls.train, accumulate)
        if self.resume_from is not None and tracks_best:
            raise InvalidInputError(f"{as_given('resume_from')} does not restore keep_best or early_stopping's tracking "
                                    "yet; resume without them, or start a new run.")
        self.state = read(self.resume_from) if self.resume_from is not None else None

    @property
    def lr(self) -> Any:
        """The interrupted run's own rate (None when not resuming): a resume does not search for a new one."""
        return self.state["run"]["lr"] if self.state is not None else None

    def restore(self, learn: Any, run: dict[str, Any]) -> int:
        """Load the checkpoint into `learn` (after checking it continues `run`); the epoch to start at. Makes the
        callback (`callbacks()`) for this run."""
        start = 0
        if self.state is not None:
            where = str(self.resume_from)
            check_same_run(self.state, run, where)
            start = restore(self.state, learn)
            logger.info("resuming %s after epoch %d of %d", where, start, run["epochs"])
        if self.active:
            earlier = list((self.state or {}).get("values", []))[:start]
            self.callback = _checkpointing(self.path, self.every, start, run, earlier)
        return start

    def callbacks(self) -> list[Any]:
        return [self.callback] if self.callback is not None else []

    @contextlib.contextmanager
    def interrupts(self) -> Iterator[None]:
        """On Ctrl-C while checkpointing, say where this run's last checkpoint is and how to resume."""
        try:
            yield
        except KeyboardInterrupt:
            written = getattr(self.callback, "written", None)
            if self.every is not None and written is not None:
                resume = as_given("resume_from", str(self.path))
                how = f"adapt tune with the same arguments and {resume}" if resume.startswith("--") else f"tune(..., {resume})"
                logger.warning("interrupted: the last checkpoint is %s (after epoch %d); %s continues the run",
                               self.path, written, how)
            elif self.every is not None:
                logger.warning("interrupted before the first checkpoint of this run was written")
            raise


def check_whole_steps(train: Any, accumulate: int) -> None:
    """With checkpoints, every epoch must end on an optimizer step: fastai's `GradientAccumulation` counts
    samples (`accumulate` full batches), so a gradient left over at an epoch's end would straddle a checkpoint."""
    from .distributed import world_size

    bs = int(getattr(train, "bs", 1))
    per_rank = -(-int(train.n) // world_size())  # a data-parallel rank's share, padded
    if getattr(train, "drop_last", False):
        per_rank -= per_rank % bs  # a short last batch is dropped, not accumulated
    step = accumulate * bs
    if per_rank % step:
        raise InvalidInputError(
            f"checkpoints with accumulate={accumulate} need epochs of whole optimizer steps: {per_rank} training "
            f"samples{' per rank' if world_size() > 1 else ''} is not a multiple of {accumulate} x batch size "
            f"{bs} = {step}, so a gradient would be split across a checkpoint. Change the batch size or "
            "accumulate (or the training set's size)."
        )


def _checkpointing(path: Path, every: int | None, start_epoch: int, run: dict[str, Any], earlier: list[Any]) -> Any:
    """A fastai callback writing the checkpoint every `every` epochs and after the last one (on rank 0); on resume
    the metrics rows of the epochs before `start_epoch` are the interrupted run's."""
    from fastai.callback.core import Callback

    from .distributed import is_main_process

    class Checkpoint(Callback):
        order = 95  # after the Recorder (and SaveModelCallback) have seen the epoch
        written: int | None = None  # the epoch of the last checkpoint this run wrote

        def after_epoch(self) -> None:
            done = self.epoch + 1
            if done <= start_epoch:  # skipped on resume: the Recorder's row for it is the interrupted run's
                self.recorder.values[-1] = earlier[self.epoch]
                return
            if every is not None and (done % every == 0 or done == self.n_epoch) and is_main_process():
                write(path, self.learn, done, run)  # ranks hold the same state: one writes
                self.written = done
                logger.info("checkpoint after epoch %d: %s", done, path)

        def after_fit(self) -> None:
            if start_epoch:  # the metrics rows of the epochs run before the interruption
                self.recorder.values[:start_epoch] = earlier[:start_epoch]

    return Checkpoint()
