"""Opt-in ONNX Runtime fast path: an ORT-optimized, int8 (dynamic, per-channel) ONNX copy of a model.

`Tuner.export(dir, onnx=True)` writes `model.onnx` after a parity check against fp32; the `Easy*` modules
and the server run it on CPU (`precision="auto"` or `"onnx"`). Exporting needs the `onnx` extra
(`pip install adapt-tuner[onnx]`: onnxruntime and onnx); running an exported copy needs only onnxruntime
(`adapt-tuner[ort]`). The graph comes from torch's TorchScript-based
exporter (`dynamo=False`), whose BERT-style graphs ONNX Runtime's transformer optimizer knows how to fuse.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# model types whose encoder ONNX Runtime's "bert" optimizer fuses (attention, layer norm, GELU)
_BERT_LIKE = {"bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "mpnet", "deberta-v2"}

__all__ = ["ONNX_FILE", "OnnxRuntimeModel", "export_onnx", "onnx_available", "ort_available"]


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def onnx_available() -> bool:
    """True when onnxruntime and onnx are installed: what exporting an ONNX copy needs."""
    return _installed("onnxruntime", "onnx")


def ort_available() -> bool:
    """True when onnxruntime is installed: what running an exported ONNX copy needs."""
    return _installed("onnxruntime")


def _require(export: bool = True) -> None:
    if export and not onnx_available():
        from .errors import MissingDependencyError, install_hint

        raise MissingDependencyError(f"Exporting an ONNX copy needs onnxruntime and onnx: {install_hint('onnx')}.")
    if not ort_available():
        from .errors import MissingDependencyError, install_hint

        raise MissingDependencyError(f"Running an ONNX copy needs onnxruntime: {install_hint('ort')}.")


def check_exportable(config: Any) -> None:
    """Refuse, before any work, a decoder-only model (GPT-2, Llama, Qwen2, Mistral): torch's TorchScript exporter
    cannot trace the causal masks transformers builds with `vmap`. Their int8 copy works."""
    from .errors import InvalidChoiceError
    from .modelio import auto_mapping, family_name

    kind = getattr(config, "model_type", None)
    decoder_only = kind in auto_mapping("AutoModelForCausalLM") and kind not in auto_mapping("AutoModelForMaskedLM")
    if decoder_only and not getattr(config, "is_encoder_decoder", False):
        raise InvalidChoiceError(
            f"{family_name(config)} models (decoder-only, model type {kind!r}) have no ONNX copy: torch's ONNX exporter "
            "cannot trace their causal attention masks. Export the int8 copy alone (quantize=True, onnx=False; adapt "
            "export --int8)."
        )


def _input_names(tokenizer: Any) -> list[str]:
    return [n for n in tokenizer.model_input_names if n in ONNX_INPUTS]


def _logits_module(model: Any, names: list[str]) -> Any:
    """A module taking positional tensors and returning only the logits: what gets exported."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return LogitsOnly().eval()


def _optimize(raw: Path, out: Path, config: Any) -> Path:
    """ORT's transformer graph fusions for BERT-like encoders; other models keep the plain graph."""
    if getattr(config, "model_type", None) not in _BERT_LIKE:
        return raw
    from onnxruntime.transformers import optimizer

    try:
        opt = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=int(config.num_attention_heads), hidden_size=int(config.hidden_size)
        )
    except Exception as e:
        logger.warning("ONNX Runtime could not optimize this graph (%s); keeping the plain one.", e)
        return raw
    opt.save_model_to_file(str(out))
    return out


def export_onnx(model: Any, tokenizer: Any, path: str | Path, quantize: bool = True) -> Path:
    """Write `model` (a transformers model with `.logits`) as an optimized ONNX graph, int8 when `quantize`."""
    _require()
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    names = _input_names(tokenizer)
    fp32 = copy.deepcopy(model).to("cpu").float().eval()
    sample = tokenizer(["a short example", "another, slightly longer example"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        token_level = fp32(**{n: sample[n] for n in names}).logits.dim() == 3
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    with tempfile.TemporaryDirectory(prefix="adapt-onnx-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings():  # tracer and deprecation chatter from torch and transformers
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _logits_module(fp32, names),
                tuple(sample[n] for n in names),
                str(raw),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        graph = _optimize(raw, Path(tmp) / "opt.onnx", fp32.config)
        if quantize:
            quantize_dynamic(
                str(graph),
                str(path),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        else:
            shutil.copyfile(graph, path)
    return path


class OnnxRuntimeModel:
    """An ONNX Runtime session that quacks like a transformers model for adapt's inference path.

    `model(**batch).logits` is a torch tensor; `config` is the original model's config (labels etc.).
    """

    training = False

    def __init__(self, path: str | Path, config: Any, threads: int | None = None) -> None:
        _require(export=False)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.path = Path(path)

    @property
    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    def eval(self) -> OnnxRuntimeModel:
        return self

    def train(self, mode: bool = True) -> OnnxRuntimeModel:
        return self

    def __call__(self, **batch: Any) -> Any:
        import numpy as np
        import torch

        feed = {n: np.ascontiguousarray(batch[n].cpu().numpy(), dtype=np.int64) for n in self.input_names}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feed)[0]))
