"""`EasyBase`: what every `Easy*` module shares. Loads each model once (thread-safe) and predicts through the
front door in `adapt.inference`, so an Easy verb, `Tuner.predict`, the CLI and the server give the same JSON.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .enums import DetailLevel
from .errors import CorruptModelError, InvalidChoiceError, InvalidInputError
from .inference import predict_json

if TYPE_CHECKING:
    from .tasks.base import TaskSpec

__all__ = ["EasyBase", "ModelRef"]

# transformers' loading is not thread-safe (it patches torch.nn.Module methods while it runs), so every load in the
# process, whatever its folder or Easy module, runs alone
_LOAD_LOCK = threading.Lock()

ModelRef = Any  # a folder path, a hub id, a flair .pt file or a loaded predictor's source


class EasyBase:
    """Base of the `Easy*` modules: loads each model once per instance and caches it by path and device.

    The task's declaration (`TaskSpec(easy=...)`, which binds `spec` and `task`) says which transformers auto class
    and heads to load, which flair class is accepted, and which predictor wraps a loaded model.
    """

    task: ClassVar[str]

    def __init__(
        self,
        device: Any = None,
        precision: str = "auto",
        trust_pickle: bool = False,
        strict: bool = False,
        adapter_base: str | None = None,
    ) -> None:
        """`trust_pickle=True` allows flair `.pt` models (pickles: loading one runs code from the file); `strict=True`
        loads only folders adapt saved (with a verified `adapt.json`); `adapter_base` is where the base of a LoRA
        adapter folder is on this machine (a Hub id or folder), when the name its config records is not reachable."""
        if precision not in self.precisions():
            raise InvalidChoiceError(f"precision must be one of {list(self.precisions())}, got {precision!r}.")
        self.device = device
        self.trust_pickle, self.strict, self.adapter_base = trust_pickle, strict, adapter_base
        # auto, on CPU: the exported ONNX copy (when onnxruntime is installed), else the int8 copy, else fp32
        self.precision = precision
        self._cache: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def spec(self) -> TaskSpec:
        """This module's task declaration (bound when the task declares it)."""
        from .tasks.base import spec_of

        return spec_of(type(self))

    @classmethod
    def precisions(cls) -> tuple[str, ...]:
        from .tasks.base import spec_of

        copies = spec_of(cls).fast_copies
        return ("auto", "fp32", *(p for p in ("int8", "onnx") if p in copies))

    # -- loading ---------------------------------------------------------------------------------------
    def _load(self, model_name_or_path: ModelRef) -> Any:
        from .loading import check_source, load_hf_model
        from .modelio import ModelSource, load_flair_model, load_hf_config, load_tokenizer, pad_with_eos, resolve_model_source
        from .utils import default_device

        spec = self.spec
        src = model_name_or_path if isinstance(model_name_or_path, ModelSource) else resolve_model_source(
            model_name_or_path, strict=self.strict)
        check_source(spec, src, type(self).__name__)
        if src.kind == "flair" and spec.flair and spec.flair_predictor:  # (check_source refused one the task lacks)
            return spec.flair_predictor(load_flair_model(src, spec.flair, self.trust_pickle))
        device = default_device(self.device)
        choice, copy = self._precision(src, device)
        if choice == "onnx":  # the graph holds the weights: the torch model is never loaded
            from .ort import OnnxRuntimeModel

            config = load_hf_config(src, spec.saved_task, spec.heads, spec.auto_class)
            model: Any = OnnxRuntimeModel(Path(src.location) / copy, config)
            return spec.predictor.from_model(model, pad_with_eos(load_tokenizer(src.location)), src.manifest)
        model, tokenizer = load_hf_model(src, spec.auto_class, spec.saved_task, spec.heads, device, self.adapter_base)
        if choice == "int8":
            from .quantize import load_int8

            model = load_int8(model, Path(src.location) / copy)
        return spec.predictor.from_model(model, tokenizer, src.manifest)

    def _precision(self, src: Any, device: Any) -> tuple[str, str]:
        """(fp32, int8 or onnx, the copy's file) as `precision` asks; auto on CPU prefers ONNX, then int8."""
        from .ort import ort_available

        manifest = src.manifest or {}
        onnx, q = manifest.get("onnx"), manifest.get("quantized")
        choice = self.precision
        if choice == "auto":
            on_cpu = device.type == "cpu"
            choice = "onnx" if on_cpu and onnx and ort_available() else "int8" if on_cpu and q else "fp32"
        if choice == "fp32":
            return choice, ""
        saved = onnx if choice == "onnx" else q
        if not saved:
            how = "onnx=True" if choice == "onnx" else "quantize=True"
            raise CorruptModelError(f"{src.location!r} has no {choice} copy; export it with {how}.")
        return choice, str(saved["file"])

    def get_model(self, model_name_or_path: ModelRef) -> Any:
        """The cached predictor for this path, loaded on first use; concurrent first calls wait for one load."""
        from .utils import default_device

        key = (str(getattr(model_name_or_path, "location", model_name_or_path)), str(default_device(self.device)))
        model = self._cache.get(key)
        if model is not None:
            return model
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            model = self._cache.get(key)
            if model is None:
                with _LOAD_LOCK:
                    model = self._load(model_name_or_path)
                self._cache[key] = model
        return model

    # -- prediction ------------------------------------------------------------------------------------
    def predict(
        self,
        text: Any,
        model_name_or_path: ModelRef,
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
        **options: Any,
    ) -> dict[str, Any]:
        """Predict for one input or a list through the shared front door; a JSON-safe dict (lists of length 1 for one).
        `batch_size=` is accepted for AdaptNLP's `mini_batch_size`."""
        from .options import batch_size_option, check_options

        mini_batch_size = batch_size_option(mini_batch_size, 32, options, "mini_batch_size")
        level = DetailLevel(detail_level)  # checked before any model loads, as the options are
        check_options(options, self.spec.predictor.options, f"{type(self).__name__}.{self.spec.verb}")
        predictor = self.get_model(model_name_or_path)
        return predict_json(predictor, text, self.spec.fields, mini_batch_size, level, options)

    tag_text = predict  # AdaptNLP's name of the verb of the classifiers and taggers

    def tag_all(
        self, text: Any, mini_batch_size: int = 32, detail_level: DetailLevel | str = DetailLevel.Low, **options: Any
    ) -> dict[str, Any]:
        """Run every model loaded so far on `text`; returns `{model_name_or_path: result}`."""
        if not self._cache:
            raise InvalidInputError("No models loaded yet; call tag_text(text, model_name_or_path) first.")
        return {  # predict() reads batch_size= from the options
            name: self.predict(text, name, mini_batch_size, detail_level, **options) for name, _device in list(self._cache)
        }

    def release(self) -> None:
        """Drop every cached model."""
        with self._guard:
            self._cache.clear()
            self._locks.clear()
