"""The task-agnostic `Tuner`: a fastai `Learner` over a transformers model with a small surface.

fastai is imported when a Tuner is built, never at `import adapt`.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .enums import Strategy

logger = logging.getLogger(__name__)

__all__ = ["Tuner", "sgdr_cycles"]


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


def _load_fastai_extensions() -> None:
    """Import the fastai modules that add fit policies, progress tables and mixed precision to `Learner`."""
    import importlib

    for mod in ("fastai.callback.schedule", "fastai.callback.progress", "fastai.callback.fp16", "fastai.callback.tracker"):
        importlib.import_module(mod)


class Tuner:
    """Fine-tune a transformers model with fastai: `tune`, `lr_find`, `predict`, `evaluate`, `save`, `export`.

    `tuner.learn` is the fastai `Learner`; with `expose_fastai_api=True` its attributes are also reachable on
    the tuner itself (`tuner.fit_one_cycle(...)`, `tuner.recorder`).
    """

    task: ClassVar[str] = "base"
    # the model outputs fastai's loss and metrics receive (one tensor, or a tuple in this order)
    output_keys: ClassVar[tuple[str, ...]] = ("logits",)
    classes: list[str]

    def __init__(
        self,
        dls: Any,
        model: Any,
        tokenizer: Any = None,
        loss_func: Callable[..., Any] | None = None,
        metrics: Any = None,
        opt_func: Callable[..., Any] | None = None,
        additional_cbs: Any = None,
        expose_fastai_api: bool = False,
        device: Any = None,
        mixed_precision: str | None = None,
        **learner_kwargs: Any,
    ) -> None:
        from fastai.learner import Learner
        from fastai.optimizer import Adam

        _load_fastai_extensions()

        from .engine import HFModel, hf_layer_groups
        from .utils import default_device

        self.dls = dls
        self.tokenizer = tokenizer if tokenizer is not None else getattr(dls, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError("Pass a tokenizer, or dataloaders built by TaskDatasets.dataloaders() (they carry one).")
        self.device = default_device(device if device is not None else getattr(dls, "device", None))
        dls.to(self.device)
        self.model = model.to(self.device)
        self.expose_fastai_api = expose_fastai_api
        self.lr_suggestion: Any = None
        self._history: list[dict[str, float]] = []
        # fastai writes checkpoints (e.g. the LR finder's) under `path`; keep them out of the working directory
        learner_kwargs.setdefault("path", tempfile.mkdtemp(prefix="adapt-"))
        self.learn = Learner(
            dls,
            HFModel(self.model, self.output_keys),
            loss_func=loss_func,
            metrics=metrics,
            opt_func=opt_func or Adam,
            splitter=hf_layer_groups,
            cbs=additional_cbs,
            **learner_kwargs,
        )
        self._set_precision(mixed_precision)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails
        if name != "learn" and self.__dict__.get("expose_fastai_api") and "learn" in self.__dict__:
            return getattr(self.__dict__["learn"], name)
        raise AttributeError(
            f"{type(self).__name__!s} has no attribute {name!r}. The fastai Learner is `tuner.learn`; "
            "pass expose_fastai_api=True to reach its attributes on the tuner."
        )

    def _set_precision(self, mixed_precision: str | None) -> None:
        if mixed_precision is None:
            return
        mp = mixed_precision.lower()
        if mp not in ("fp16", "bf16"):
            from .errors import InvalidChoiceError

            raise InvalidChoiceError(f"mixed_precision must be None, 'fp16' or 'bf16', got {mixed_precision!r}.")
        if self.device.type != "cuda":
            warnings.warn(f"mixed_precision={mp!r} needs a CUDA device; training in fp32 on {self.device}.", stacklevel=3)
            return
        self.learn = self.learn.to_fp16() if mp == "fp16" else self.learn.to_bf16()

    def _pretrained(self, model_name: Any, auto_class_name: str, **config_kwargs: Any) -> Any:
        """Load `model_name` (hub id, folder, adapt save or a `PreTrainedModel`) with a head sized to `self.classes`.

        An adapt save of another task, or with other labels, is refused rather than silently re-headed.
        """
        import transformers

        from .errors import UnknownLabelError, WrongTaskError
        from .modelio import resolve_model_source

        if isinstance(model_name, transformers.PreTrainedModel):
            return model_name
        src = resolve_model_source(model_name)
        name = type(self).__name__
        if src.kind == "flair":
            raise WrongTaskError(f"{model_name!r} is a flair model; {name} fine-tunes transformers models.")
        if src.manifest and src.manifest.get("task") not in (None, self.task):
            raise WrongTaskError(f"{model_name!r} holds a {src.manifest.get('task')!r} model, not {self.task!r}.")
        saved = src.manifest.get("labels") if src.manifest else None
        if saved is not None and list(saved) != list(self.classes):
            raise UnknownLabelError(f"The saved model's labels {saved} differ from the data's labels {list(self.classes)}.")
        config = transformers.AutoConfig.from_pretrained(src.location)
        head = getattr(config, "architectures", None) or []
        resize = bool(head) and not head[0].endswith("Model") and config.num_labels != len(self.classes)
        if resize:  # a fine-tuned head of another size: start a new head rather than fail on shapes
            warnings.warn(
                f"{model_name!r} has a {config.num_labels}-class head; starting a new {len(self.classes)}-class head.",
                stacklevel=3,
            )
        return getattr(transformers, auto_class_name).from_pretrained(
            src.location,
            num_labels=len(self.classes),
            id2label=dict(enumerate(self.classes)),
            label2id={c: i for i, c in enumerate(self.classes)},
            ignore_mismatched_sizes=resize,
            **config_kwargs,
        )

    # -- layer groups -------------------------------------------------------------------------------
    def freeze(self) -> None:
        """Train only the head (last layer group)."""
        self.learn.freeze()

    def freeze_to(self, n: int) -> None:
        """Freeze layer groups before `n` (groups: embeddings, lower encoder, upper encoder, head)."""
        self.learn.freeze_to(n)

    def unfreeze(self) -> None:
        """Train every layer."""
        self.learn.unfreeze()

    # -- learning rate -------------------------------------------------------------------------------
    def lr_find(self, start_lr: float = 1e-6, end_lr: float = 1e-1, num_it: int = 30, show_plot: bool = False) -> Any:
        """Run fastai's LR finder (cheap: `num_it` batches) and return an `LRSuggestion` fit for fine-tuning.

        Weights are restored afterwards. The suggestion is also kept in `tuner.lr_suggestion`.
        """
        from .distributed import is_main_process
        from .engine import suggest_fine_tune_lr

        self.learn.lr_find(start_lr=start_lr, end_lr=end_lr, num_it=num_it, show_plot=False, suggest_funcs=None)
        rec = self.learn.recorder
        lrs, losses = [float(x) for x in rec.lrs], [float(x) for x in rec.losses]
        skip = num_it // 10
        s = suggest_fine_tune_lr(
            lrs[skip:-5] if len(lrs) > skip + 10 else lrs, losses[skip:-5] if len(lrs) > skip + 10 else losses
        )
        if show_plot:
            rec.plot_lr_find(suggestions=[(s.chosen, min(losses))], nms=["fine_tune"])
        self.lr_suggestion = s
        if is_main_process():
            logger.info("lr_find: raw suggestion %.3g, using %.3g (%s)", s.raw, s.chosen, s.reason)
        return s

    # -- training -------------------------------------------------------------------------------------
    def tune(
        self,
        epochs: int,
        lr: float | Sequence[float] | Any = None,
        strategy: Strategy | str = Strategy.OneCycle,
        callbacks: Any = None,
        **fit_kwargs: Any,
    ) -> dict[str, float]:
        """Train for `epochs` total epochs with a fastai policy; `lr=None` runs `lr_find` first and uses its choice.

        `lr` may be a `slice(lo, hi)` for discriminative rates across layer groups. Returns the final
        epoch's metrics.
        """
        strategy = Strategy(strategy)
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer (total epochs), got {epochs!r}.")
        from .distributed import broadcast_object, distributed_ctx

        on_cpu = self.device.type == "cpu"
        if lr is None:  # under torchrun / accelerate launch every rank uses rank 0's choice
            lr = broadcast_object(self.lr_find().chosen, cpu=on_cpu)
        cbs = list(callbacks) if isinstance(callbacks, (list, tuple)) else callbacks
        with distributed_ctx(self.learn, cpu=on_cpu):
            self._fit(epochs, lr, strategy, cbs, **fit_kwargs)
        # snapshot now: fastai's get_preds/validate (used by evaluate and threshold tuning) reset the Recorder
        self._history = self._recorded_history()
        self._after_tune()
        return self.final_metrics()

    def _fit(self, epochs: int, lr: Any, strategy: Strategy, cbs: Any, **fit_kwargs: Any) -> None:
        if strategy is Strategy.OneCycle:
            self.learn.fit_one_cycle(epochs, lr_max=lr, cbs=cbs, **fit_kwargs)
        elif strategy is Strategy.CosineAnnealing:
            self.learn.fit_flat_cos(epochs, lr=lr, cbs=cbs, **fit_kwargs)
        elif strategy is Strategy.SGDR:
            n_cycles, cycle_len = sgdr_cycles(epochs)
            self.learn.fit_sgdr(n_cycles, cycle_len, lr_max=lr, cycle_mult=2, cbs=cbs, **fit_kwargs)
        else:
            self.learn.fit(epochs, lr=lr, cbs=cbs, **fit_kwargs)

    def _after_tune(self) -> None:
        """Hook for tasks (e.g. threshold tuning after training)."""

    def history(self) -> list[dict[str, float]]:
        """Per-epoch losses and metrics of the last `tune` call, as fastai printed them."""
        return list(self._history)

    def _recorded_history(self) -> list[dict[str, float]]:
        rec = self.learn.recorder
        names = [n for n in rec.metric_names if n not in ("epoch", "time")]
        return [
            {"epoch": float(i), **{n: float(v) for n, v in zip(names, vals, strict=False) if v is not None}}
            for i, vals in enumerate(rec.values)
        ]

    def final_metrics(self) -> dict[str, float]:
        """The last epoch's metrics (empty before training)."""
        hist = self.history()
        return {k: v for k, v in hist[-1].items() if not (isinstance(v, float) and math.isnan(v))} if hist else {}

    # -- persistence ----------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """Task-specific manifest entries written to `adapt.json`."""
        return {"task": self.task}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Atomically write a self-contained HF folder (safetensors, tokenizer, config) plus `adapt.json`."""
        return self._write(directory, extra_files=None)

    def export(
        self,
        path: str | os.PathLike[str],
        quantize: bool = False,
        onnx: bool = False,
        parity_texts: Sequence[Any] | None = None,
        min_agreement: float = 0.99,
        on_parity_fail: str = "raise",
    ) -> Path:
        """Write the deployable artifact: the saved folder plus a model card (README.md).

        `quantize=True` adds an int8 copy (`model.int8.pt`, dynamic quantization of Linear layers);
        `onnx=True` adds `model.onnx`, an ONNX Runtime-optimized graph (int8 when `quantize` is also set; needs
        the `onnx` extra). The Easy modules and the server use these on CPU. Each is checked first: its
        predictions on held-out text (`parity_texts`, default: up to 200 validation texts) must agree with
        fp32 at least `min_agreement` of the time, else `ParityError` (a warning with `on_parity_fail="warn"`).
        """
        from .distributed import barrier, is_main_process

        if not is_main_process():  # only rank 0 exports (see `_write`)
            barrier()
            return Path(path)
        if on_parity_fail not in ("raise", "warn"):
            from .errors import InvalidChoiceError

            raise InvalidChoiceError(f"on_parity_fail must be 'raise' or 'warn', got {on_parity_fail!r}.")
        manifest_extra: dict[str, Any] = {}
        writers: dict[str, Any] = {}
        texts: list[Any] = []
        if quantize or onnx:  # held-out text for the parity checks
            texts = list(parity_texts) if parity_texts is not None else [t for t in self.heldout_texts() if t.strip()]
        with tempfile.TemporaryDirectory(prefix="adapt-export-") as tmp:
            if quantize:
                from .quantize import INT8_FILE, SCHEME, quantize_int8, save_int8

                qmodel = quantize_int8(self.model)
                agree = self._parity(qmodel, texts, min_agreement, on_parity_fail, "int8")
                writers[INT8_FILE] = lambda p: save_int8(qmodel, p)
                manifest_extra["quantized"] = {"file": INT8_FILE, "scheme": SCHEME, "agreement": agree, "n_texts": len(texts)}
            if onnx:
                import shutil

                from .ort import ONNX_FILE, OnnxRuntimeModel, export_onnx

                graph = export_onnx(self.model, self.tokenizer, Path(tmp) / ONNX_FILE, quantize=quantize)
                agree = self._parity(OnnxRuntimeModel(graph, self.model.config), texts, min_agreement, on_parity_fail, "ONNX")
                writers[ONNX_FILE] = lambda p: shutil.copyfile(graph, p)
                manifest_extra["onnx"] = {"file": ONNX_FILE, "int8": quantize, "agreement": agree, "n_texts": len(texts)}
            return self._write(
                path, extra_files={"README.md": self.model_card()}, extra_writers=writers, manifest_extra=manifest_extra
            )

    def predictor(self) -> Any:
        """The task's shared prediction path over this tuner's model (what the Easy modules use)."""
        raise NotImplementedError

    def heldout_texts(self, n: int = 200) -> list[str]:
        """Up to `n` validation inputs as text (decoded from their token ids), for parity checks."""
        valid = self.dls.valid.dataset
        rows = valid.select(range(min(n, len(valid))))
        return [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in rows["input_ids"]]

    def _parity(self, candidate: Any, texts: list[Any], min_agreement: float, on_fail: str, what: str) -> float:
        """Share of held-out decisions on which `candidate` (a faster copy of the model) agrees with fp32."""
        import dataclasses

        from .quantize import ParityError, agreement

        fp32 = self.predictor()
        ref = fp32.predict(texts).decisions()
        got = dataclasses.replace(fp32, model=candidate).predict(texts).decisions()
        agree = agreement(ref, got)
        logger.info("%s parity: %.4f agreement with fp32 on %d texts", what, agree, len(texts))
        if agree < min_agreement:
            msg = f"The {what} model agrees with fp32 on only {agree:.2%} of {len(ref)} decisions (< {min_agreement:.0%})."
            if on_fail != "warn":
                raise ParityError(msg + " Refusing to export it; pass on_parity_fail='warn' to export anyway.")
            warnings.warn(msg, stacklevel=3)
        return agree

    def model_card(self) -> str:
        """A short Markdown model card with the final epoch's metrics."""
        from .modelio import model_card

        return model_card(self.manifest(), self.final_metrics())

    def _write(
        self,
        directory: str | os.PathLike[str],
        extra_files: dict[str, str] | None,
        extra_writers: dict[str, Any] | None = None,
        manifest_extra: dict[str, Any] | None = None,
    ) -> Path:
        from .distributed import barrier, is_main_process
        from .modelio import save_hf_folder

        if not is_main_process():  # data-parallel ranks hold identical weights; rank 0 writes, the others wait
            barrier()
            return Path(directory)
        self._update_config()
        manifest = {**self.manifest(), **(manifest_extra or {})}
        try:
            return save_hf_folder(
                self.model, self.tokenizer, directory, manifest, extra_files=extra_files, extra_writers=extra_writers
            )
        finally:
            barrier()

    def _update_config(self) -> None:
        """Hook for tasks to write labels etc. into `model.config` before saving."""
