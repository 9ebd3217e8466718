"""Small helpers: seeding, devices, atomic folder writes, checksums. Heavy imports stay inside functions."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import TargetExistsError

logger = logging.getLogger(__name__)

__all__ = [
    "atomic_directory",
    "default_device",
    "exchange_paths",
    "fsync_path",
    "library_versions",
    "recover_directory",
    "set_seed",
    "sha256_file",
    "token_lengths",
]


_SEED: dict[str, int] = {}


def set_seed(seed: int = 42, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices) in one call; `deterministic` also asks torch for determinism."""
    import numpy as np
    import torch

    _SEED["seed"] = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def last_seed() -> int | None:
    """The seed of the last `set_seed` call in this process (None before any), for the training record."""
    return _SEED.get("seed")


class _ConsoleHandler(logging.StreamHandler):
    """adapt's INFO messages on stderr while the application has configured no logging of its own. Once it has,
    this handler takes itself and the INFO level it set off the `adapt` logger, so the application's levels rule."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            log = logging.getLogger("adapt")
            log.removeHandler(self)
            if log.level == logging.INFO:
                log.setLevel(logging.NOTSET)
            return
        self.stream = sys.stderr  # the current stderr (a notebook's, a redirected one), not the one at set-up
        super().emit(record)


def console_logging() -> None:
    """Show adapt's progress messages (the LR the finder chose and why, what `tune` runs) on stderr, as fastai
    shows its progress, unless the application set up logging: then its handlers and levels decide. Idempotent."""
    log = logging.getLogger("adapt")
    if logging.getLogger().handlers or any(isinstance(h, _ConsoleHandler) for h in log.handlers):
        return
    handler = _ConsoleHandler()
    handler.setFormatter(logging.Formatter("[adapt] %(message)s"))
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def progress_off() -> bool:
    """`ADAPT_PROGRESS=0` (or false/no/off) turns every adapt progress bar off."""
    return os.environ.get("ADAPT_PROGRESS", "").strip().lower() in ("0", "false", "no", "off")


DATASETS_BARS_MIN_ROWS = 20_000  # `datasets` shows its .map bars for data this large (seconds of work, not less)


@contextlib.contextmanager
def datasets_bars(n_rows: int) -> Iterator[None]:
    """`datasets`' progress bars only for work that takes long: off below `DATASETS_BARS_MIN_ROWS` rows and under
    `ADAPT_PROGRESS=0`; the caller's setting is restored afterwards."""
    from datasets.utils import logging as ds_logging

    was_on = ds_logging.is_progress_bar_enabled()
    if was_on and (n_rows < DATASETS_BARS_MIN_ROWS or progress_off()):
        ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            ds_logging.enable_progress_bar()


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

    The new folder is written completely beside the old one, its files and itself are fsynced, and it is then
    swapped in: with one atomic exchange of the two paths where the system has it (Linux `renameat2`), else with
    two renames, after which a crash between them leaves the previous save as `.<name>.old-*`, which the next
    load or save puts back. So at every instant the target path holds either the old or the new complete folder
    (or, after such a crash, can be recovered to the old one). Files get mode 0644 and folders 0755 (less the
    umask), so other users and containers can read a save. Leftovers of crashed saves are removed by the next.

    Only an empty folder or a previous model save is ever replaced: any other existing folder (a project
    directory, say) is refused, and so is a target that is, or contains, `protect` (e.g. the folder being exported).
    """
    target = Path(target).absolute()
    recover_directory(target)
    _check_target(target, protect)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        _seal(tmp)
        _swap_in(tmp, target)
    finally:
        if tmp.exists():  # a failed save, or (after an exchange) the previous save
            shutil.rmtree(tmp, ignore_errors=True)


def _check_target(target: Path, protect: str | os.PathLike[str] | None) -> None:
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not any((target / m).exists() for m in MODEL_MARKERS))
    ):
        raise TargetExistsError(f"{target} exists and is not a saved model; choose a new or empty folder.")
    if protect is not None and Path(protect).absolute() in (target, *target.parents):
        raise TargetExistsError(f"Writing to {target} would replace the source folder {protect}; choose another folder.")
    if protect is not None and target in Path(protect).absolute().parents:
        raise TargetExistsError(f"{target} contains the source folder {protect}; choose another folder.")


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
    elif not exchange_paths(tmp, target):
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(old, target)  # put the previous save back
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(target.parent)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where unsupported."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (so a rename or a new entry survives a power loss)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _seal(folder: Path) -> None:
    """Readable modes (0644 files, 0755 folders, less the umask), then fsync every file and folder, deepest first."""
    mask = _umask()
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            f = Path(root) / name
            os.chmod(f, 0o644 & ~mask)
            fsync_path(f)
        for name in dirs:
            os.chmod(Path(root) / name, 0o755 & ~mask)
            fsync_path(Path(root) / name)
    os.chmod(folder, 0o755 & ~mask)
    fsync_path(folder)


def _leftovers(target: Path, kind: str) -> list[Path]:
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.glob(f".{target.name}.{kind}-*") if p.is_dir())


def _alive(leftover: Path) -> bool:
    """Whether the process that made this temp folder (its pid is in the name) still runs."""
    try:
        pid = int(leftover.name.rsplit(".", 1)[-1].split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(target: Path) -> None:
    for leftover in _leftovers(target, "tmp") + (_leftovers(target, "old") if target.exists() else []):
        if not _alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def recover_directory(target: str | os.PathLike[str]) -> bool:
    """When a crash between the two renames of a save left no `target`, move its previous save back; True if so."""
    target = Path(target).absolute()
    if target.exists():
        return False
    olds = [p for p in _leftovers(target, "old") if not _alive(p)]
    if not olds:
        return False
    newest = max(olds, key=lambda p: p.stat().st_mtime)
    os.rename(newest, target)
    logger.warning("recovered %s from %s, left by an interrupted save", target, newest.name)
    return True


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

    from .versions import __version__

    out: dict[str, str] = {"adapt": __version__}  # published as adapt-tuner; PyPI's "adapt" is another project
    for name in ("torch", "transformers", "tokenizers", "fastai", "flair"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def token_lengths(dset: Any) -> Any:
    """Number of tokens in each row of a tokenized `datasets.Dataset` (NumPy), read from Arrow without Python lists."""
    import pyarrow.compute as pc

    col = dset.with_format("arrow")[:]["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False)
