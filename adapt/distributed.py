"""Data-parallel training on fastai's Accelerate-based `DistributedTrainer`, on GPUs and on CPU ranks.

`Tuner.tune` uses this automatically when the process was started by `torchrun` or `accelerate launch`
(`WORLD_SIZE > 1`): the model is prepared by Accelerate (DDP, gloo on CPU / nccl on GPU) and each rank
iterates its own shard of every batch order. The only change to fastai's trainer is a dataloader whose
index broadcast works on any backend: fastai's `DistributedDL._broadcast` moves the indices to CUDA,
which fails on CPU ranks ("Torch not compiled with CUDA enabled").

The helpers below (`world_size`, `rank`, `is_main_process`, `barrier`, `broadcast_object`) are cheap and
safe in a single process; only `distributed_ctx` imports fastai and accelerate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["barrier", "broadcast_object", "distributed_ctx", "is_main_process", "rank", "world_size"]


def world_size() -> int:
    """Number of processes in this launch (1 when not launched by torchrun / accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main_process() -> bool:
    """True on rank 0: the process that logs, saves and exports."""
    return rank() == 0


def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    if world_size() > 1 and _initialized():
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(obj: Any, src: int = 0, cpu: bool | None = None) -> Any:
    """Rank `src`'s `obj` on every rank (e.g. the learning rate rank 0's LR finder chose)."""
    if world_size() <= 1:
        return obj
    _ensure_process_group(cpu)
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _on_cpu(cpu: bool | None = None) -> bool:
    if cpu is not None:
        return cpu
    import torch

    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")


def _ensure_process_group(cpu: bool | None = None) -> None:
    """Let Accelerate start the process group (gloo on CPU, nccl on GPU) from the launcher's environment.

    Accelerate only treats a torchrun launch as multi-CPU when told `cpu=True`; without it, CPU ranks would
    silently train alone.
    """
    if not _initialized():
        from accelerate import PartialState

        PartialState(cpu=_on_cpu(cpu))


def _trainer_class() -> type:
    import torch
    import torch.distributed as dist
    from fastai.distributed import DistributedDL, DistributedTrainer

    class AnyBackendDistributedDL(DistributedDL):
        """fastai's `DistributedDL`, broadcasting the batch order on the process group's own device."""

        def _broadcast(self, t: list[int], rank: int) -> list[int]:
            on_cuda = dist.get_backend() == "nccl"
            x = torch.tensor(t, dtype=torch.long, device="cuda" if on_cuda else "cpu")
            dist.broadcast(x, rank)
            return x.cpu().tolist()

    class AdaptDistributedTrainer(DistributedTrainer):
        """fastai's Accelerate-based trainer with the any-backend dataloader."""

        def _wrap_dl(self, dl: Any) -> Any:
            if isinstance(dl, DistributedDL):
                return dl
            return AnyBackendDistributedDL(dl, device=next(self.learn.model.parameters()).device)

    return AdaptDistributedTrainer


@contextmanager
def distributed_ctx(learn: Any, cpu: bool | None = None, **accelerator_kwargs: Any) -> Iterator[Any]:
    """Train `learn` data-parallel inside this block when launched on several ranks; a no-op otherwise.

    `cpu=True` runs CPU ranks (gloo) even where GPUs exist; by default CPU ranks are used when there is no GPU.
    Rank 0 keeps fastai's progress output and logger; other ranks stay quiet.
    """
    if world_size() <= 1:
        yield learn
        return
    from .engine import without_progress

    _ensure_process_group(cpu)
    trainer_cls = _trainer_class()
    accelerator_kwargs["cpu"] = _on_cpu(cpu)
    trainer = trainer_cls(sync_bn=False, **accelerator_kwargs)
    if trainer.accelerator.num_processes != world_size():
        raise RuntimeError(
            f"Launched with WORLD_SIZE={world_size()} but Accelerate set up {trainer.accelerator.num_processes} process(es)."
        )
    learn.add_cb(trainer)
    try:
        with without_progress(learn, when=not is_main_process()):
            yield learn
    finally:
        learn.remove_cb(trainer)
