"""`from adapt.fastxtend.text.all import *`: fastai's names (`fastai.text.all`, with its callbacks and fit policies)
and fastxtend's Hugging Face names, as fastxtend's `text.all` gives them."""

from typing import Any

import fastai.text.all as _fastai

from . import huggingface as _hf
from .huggingface import (  # noqa: F401 - this module's names (`__all__` is built below)
    HuggingFaceCallback,
    HuggingFaceLoader,
    HuggingFaceLoss,
    HuggingFaceWrapper,
    save_adapt_folder,
)

# fastxtend's `all` modules hand their users fastai's names too (`Learner`, `DataLoaders`, `num_cpus`, ...)
_FASTAI: dict[str, Any] = {name: getattr(_fastai, name) for name in dir(_fastai) if not name.startswith("_")}
globals().update({name: value for name, value in _FASTAI.items() if name not in globals()})

__all__ = sorted({*_FASTAI, *_hf.__all__})
