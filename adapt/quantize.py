"""Opt-in int8 fast path: dynamic int8 quantization of Linear layers, with a parity check against fp32.

A quantized state dict cannot be stored as safetensors, so it is written with `torch.save` and always read
back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import AdaptError, InvalidInputError

logger = logging.getLogger(__name__)

INT8_FILE = "model.int8.pt"
SCHEME = "dynamic_int8_linear"

__all__ = ["INT8_FILE", "ParityError", "agreement", "load_int8", "quantize_int8", "save_int8"]


class ParityError(AdaptError, ValueError):
    """The quantized model disagrees with fp32 too often to be exported."""


def quantize_int8(model: Any) -> Any:
    """A CPU copy of `model` with every `nn.Linear` dynamically quantized to int8 (the original is untouched)."""
    import torch

    q = copy.deepcopy(model).to("cpu").eval()
    with warnings.catch_warnings():  # torch 2.13 marks quantize_dynamic deprecated; it still works and is the tool here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.ao.quantization.quantize_dynamic(q, {torch.nn.Linear}, dtype=torch.qint8)


def agreement(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Share of positions where two decision lists agree."""
    if len(a) != len(b) or not a:
        raise InvalidInputError("agreement needs two non-empty decision lists of the same length.")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def save_int8(qmodel: Any, path: Path) -> None:
    import torch

    torch.save(qmodel.state_dict(), path)


def load_int8(model: Any, path: Path) -> Any:
    """Quantize `model`'s architecture and load the saved int8 weights into it (`weights_only=True`)."""
    import torch

    q = quantize_int8(model)
    q.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return q.eval()
