"""Small helpers: seeding, devices, atomic folder writes, checksums. Heavy imports stay inside functions."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import TargetExistsError

logger = logging.getLogger(__name__)

__all__ = ["atomic_directory", "default_device", "library_versions", "set_seed", "sha256_file", "token_lengths"]


def set_seed(seed: int = 42, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices) in one call; `deterministic` also asks torch for determinism."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def default_device(device: Any = None) -> Any:
    """Return `torch.device(device)`, or CUDA when available and CPU otherwise.

    Under `torchrun` / `accelerate launch` on GPUs, each process gets its own GPU (`cuda:$LOCAL_RANK`).
    """
    import torch

    if device is not None:
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local = os.environ.get("LOCAL_RANK")
    return torch.device(f"cuda:{int(local)}" if local and int(os.environ.get("WORLD_SIZE", "1")) > 1 else "cuda")


MODEL_MARKERS = ("adapt.json", "config.json", "model.safetensors", "pytorch_model.bin")


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], protect: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `target`, on error `target` is untouched.

    The new folder is written completely beside the old one and then swapped in with renames, so a crash
    while writing leaves the previous save as it was. Only an empty folder or a previous model save is ever
    replaced: any other existing folder (a project directory, say) is refused, and so is a target that is,
    or contains, `protect` (e.g. the folder being exported).
    """
    target = Path(target).absolute()
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not any((target / m).exists() for m in MODEL_MARKERS))
    ):
        raise TargetExistsError(f"{target} exists and is not a saved model; choose a new or empty folder.")
    if protect is not None and Path(protect).absolute() in (target, *target.parents):
        raise TargetExistsError(f"Writing to {target} would replace the source folder {protect}; choose another folder.")
    if protect is not None and target in Path(protect).absolute().parents:
        raise TargetExistsError(f"{target} contains the source folder {protect}; choose another folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
        try:
            tmp.rename(target)
        except OSError:
            if old is not None:
                old.rename(target)  # put the previous save back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of adapt and the libraries a saved model depends on (only those already importable)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for name in ("adapt", "torch", "transformers", "tokenizers", "fastai", "flair"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def token_lengths(dset: Any) -> Any:
    """Number of tokens in each row of a tokenized `datasets.Dataset` (NumPy), read from Arrow without Python lists."""
    import pyarrow.compute as pc

    col = dset.with_format("arrow")[:]["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False)
