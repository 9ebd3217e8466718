"""Resumable training checkpoints: `tune(checkpoint_every=N)` writes one, `tune(resume_from=path)` continues it.

A checkpoint (`checkpoints/last.pt` under the tuner's `work_dir`) holds what an uninterrupted run would carry into
the next epoch: the weights, the optimizer's state and hyper-parameters, the epoch reached (the fit policy's
schedule restarts from there, as fastai's `start_epoch` does), the random states (Python, NumPy, torch, and the
training loader's shuffling) and the metrics table so far, plus the run's settings, which a resume must repeat.
It is written to a temporary file, fsynced and renamed over the previous one, so an interrupt (Ctrl-C) or a crash
at any moment leaves the last complete checkpoint.
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

from .errors import CorruptModelError, InvalidInputError

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.pt"
FORMAT = 1


def _rng_state(dl: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "loader": dl.rng.getstate() if hasattr(dl, "rng") else None}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], dl: Any) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("loader") is not None and hasattr(dl, "rng"):
        dl.rng.setstate(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write(path: Path, learn: Any, epoch: int, run: dict[str, Any]) -> None:
    """Atomically write the checkpoint after `epoch` epochs of the run described by `run`."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "epoch": epoch, "run": run,
        "model": learn.model.state_dict(), "opt": learn.opt.state_dict(),
        "rng": _rng_state(learn.dls.train), "values": [list(v) for v in learn.recorder.values],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by `write` (a folder means its `last.pt`); a specific error when it is not one."""
    import torch

    file = Path(path)
    file = file / CHECKPOINT_FILE if file.is_dir() else file
    if not file.is_file():
        raise InvalidInputError(f"resume_from={str(path)!r}: no checkpoint there. tune(checkpoint_every=1) writes "
                                f"one to <work_dir>/checkpoints/{CHECKPOINT_FILE}.")
    try:  # optimizer and RNG states are plain containers of tensors, numbers and tuples, but not all allow-listed
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CorruptModelError(f"{str(file)!r} is not a readable adapt checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CorruptModelError(f"{str(file)!r} is not an adapt training checkpoint (format {FORMAT}).")
    return state


def check_same_run(state: dict[str, Any], run: dict[str, Any], where: str) -> None:
    """A resume repeats the interrupted run's settings; name the first that differs."""
    for key, saved in state["run"].items():
        if run.get(key) != saved:
            raise InvalidInputError(f"resume_from={where!r} continues a run with {key}={saved!r}, but this call has "
                                    f"{key}={run.get(key)!r}; pass the same {key} (or start a new run without resume_from).")


def restore(state: dict[str, Any], learn: Any) -> int:
    """Load weights, optimizer and random states into `learn`; returns the epoch to start from."""
    learn.model.load_state_dict(state["model"])
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict(state["opt"])
    _set_rng_state(state["rng"], learn.dls.train)
    return int(state["epoch"])


def make_callback(path: Path, every: int, start_epoch: int, run: dict[str, Any]) -> Any:
    """A fastai callback writing the checkpoint every `every` epochs and after the last one."""
    from fastai.callback.core import Callback

    from .distributed import is_main_process

    class Checkpoint(Callback):
        order = 95  # after the Recorder (and SaveModelCallback) have seen the epoch
        written: int | None = None  # the epoch of the last checkpoint this run wrote

        def after_epoch(self) -> None:
            done = self.epoch + 1
            if done <= start_epoch or not is_main_process():  # an epoch skipped on resume; ranks hold the same state
                return
            if done % every == 0 or done == self.n_epoch:
                write(path, self.learn, done, run)
                self.written = done
                logger.info("checkpoint after epoch %d: %s", done, path)

    return Checkpoint()
