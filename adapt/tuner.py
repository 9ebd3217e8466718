"""The task-agnostic `Tuner`: a fastai `Learner` over a transformers model with a small surface.

fastai is imported when a Tuner is built, never at `import adapt`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .enums import DetailLevel, Strategy
from .errors import (
    CorruptModelError,
    InvalidChoiceError,
    InvalidInputError,
    ModelNotFoundError,
    UnknownLabelError,
    WrongTaskError,
    unknown_name,
)
from .options import Option, check_options, defaults, options_signature
from .utils import console_logging

if TYPE_CHECKING:
    from .search import SearchResult
    from .tasks.base import TaskSpec

logger = logging.getLogger(__name__)

__all__ = ["AdaptiveTuner", "Tuner", "sgdr_cycles"]


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


def check_lr(lr: Any) -> None:
    """`lr` must be None (find one), a positive number, a `slice` of positive numbers or a list of them."""
    values = [lr.start, lr.stop] if isinstance(lr, slice) else list(lr) if isinstance(lr, (list, tuple)) else [lr]
    if lr is None:
        return
    for v in values:
        if v is None and isinstance(lr, slice):
            continue
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        if not ok:
            raise InvalidInputError(
                f"lr must be a positive number, a slice(lo, hi) of them, or None to run the LR finder; got {lr!r}."
            )


def lower_is_better(metric: str) -> bool:
    """Losses, perplexity and error rates improve downwards; every other metric upwards."""
    return any(word in metric.lower() for word in ("loss", "perplexity", "error"))


def _finite(value: Any) -> Any:
    """NaN and infinities as None: `adapt.json` must be JSON that any reader parses."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def lr_json(lr: Any) -> Any:
    """A learning rate as JSON: a number, `[lo, hi]` for a slice, a list per layer group, or None."""
    if lr is None:
        return None
    if isinstance(lr, slice):
        return [lr_json(lr.start), lr_json(lr.stop)]
    if isinstance(lr, (list, tuple)) or hasattr(lr, "tolist"):
        values = lr.tolist() if hasattr(lr, "tolist") else list(lr)
        return [float(v) for v in values] if isinstance(values, list) else float(values)
    return float(lr)


def _load_fastai_extensions() -> None:
    """Import the fastai modules that add fit policies, progress tables and mixed precision to `Learner`."""
    import importlib

    for mod in ("fastai.callback.schedule", "fastai.callback.progress", "fastai.callback.fp16", "fastai.callback.tracker"):
        importlib.import_module(mod)


class Tuner:
    """Fine-tune a transformers model with fastai: `tune`, `lr_find`, `predict`, `evaluate`, `save`, `export`.

    A task's tuner declares its task (`task`), its own keyword `options`, and hooks for what differs
    (default loss and metrics, labels, extra manifest entries); this class writes the rest once: construction,
    model loading and its checks, prediction through the shared front door, evaluation, saving and export.
    `tuner.learn` is the fastai `Learner`; with `expose_fastai_api=True` its attributes are also reachable on
    the tuner itself (`tuner.fit_one_cycle(...)`, `tuner.recorder`). `base_model_name=` is what the card and
    `adapt.json` call a base loaded from a local folder (its Hub id, say); without it a Hub id given as the model, or
    that of a Hugging Face cache folder, is recorded, else the folder's name, marked as a local model. A LoRA adapter
    folder given as the model loads on the base its config names, or on `adapter_base=` (a Hub id or folder).
    """

    task: ClassVar[str] = "base"
    # the model outputs fastai's loss and metrics receive (one tensor, or a tuple in this order)
    output_keys: ClassVar[tuple[str, ...]] = ("logits",)
    options: ClassVar[tuple[Option, ...]] = ()  # the task's own keyword-only options
    also_loads: ClassVar[tuple[str, ...]] = ()  # saved tasks besides its own whose weights it can start from
    # other accepted spellings of metric names users pass (`metrics=["f1_score"]`, AdaptNLP's) -> adapt's name
    metric_aliases: ClassVar[dict[str, str]] = {}
    classes: list[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `help(SequenceClassificationTuner)` and `inspect.signature` show the declared options
        cls.__signature__ = options_signature(Tuner.__init__, cls.options, replace_var_keyword=False)  # type: ignore[attr-defined]

    def __init__(
        self,
        dls: Any,
        model_name: Any,
        tokenizer: Any = None,
        loss_func: Callable[..., Any] | None = None,
        metrics: Any = None,
        opt_func: Callable[..., Any] | None = None,
        additional_cbs: Any = None,
        expose_fastai_api: bool = False,
        device: Any = None,
        mixed_precision: str | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        gradient_checkpointing: bool = False,
        peft: Any = None,
        base_model_name: str | None = None,
        adapter_base: str | None = None,
        **kwargs: Any,
    ) -> None:
        from fastai.learner import Learner
        from fastai.optimizer import Adam

        _load_fastai_extensions()

        from .engine import HFModel, hf_layer_groups
        from .utils import default_device

        learner_kwargs = self._set_options(kwargs)
        self.dls = dls
        self.datasets = self._check_data(dls)
        self.tokenizer: Any = tokenizer if tokenizer is not None else getattr(dls, "tokenizer", None)
        if self.tokenizer is None:
            raise InvalidInputError("Pass a tokenizer, or dataloaders built by TaskDatasets.dataloaders() (they carry one).")
        self.base_model = str(getattr(model_name, "name_or_path", model_name))
        self.base_model_name = base_model_name  # the Hub id (or any name) to record for a local base folder
        self.adapter_base = adapter_base  # where the base of a LoRA adapter folder given as the model is, here
        self.classes = self._classes(dls)
        self.device = default_device(device if device is not None else getattr(dls, "device", None))
        dls.to(self.device)
        self.model = self._with_adapter(self._padded(self._load_model(model_name)), peft).to(self.device)
        self.expose_fastai_api = expose_fastai_api
        self.lr_suggestion: Any = None
        self._history: list[dict[str, float]] = []
        self._default_metrics_used = metrics is None
        self._default_loss_used = loss_func is None
        self.last_search: Any = None  # the SearchResult of the last `search`
        self._work_dir_given = work_dir is not None or "path" in learner_kwargs
        learner_kwargs.setdefault("path", self._work_dir(work_dir))
        self._training: dict[str, Any] = {}
        console_logging()
        self.learn = Learner(
            dls,
            HFModel(self.model, self.output_keys),
            loss_func=loss_func or self.default_loss(),
            metrics=self._resolve_metrics(metrics),
            opt_func=opt_func or Adam,
            splitter=hf_layer_groups,
            cbs=additional_cbs,
            **learner_kwargs,
        )
        if hasattr(self.learn, "progress"):  # bars in a terminal or notebook, plain epoch lines in a log
            from .engine import LineProgressCallback

            self.learn.remove_cb(self.learn.progress)
            self.learn.add_cb(LineProgressCallback())
        self._set_precision(mixed_precision)
        if gradient_checkpointing:
            self._checkpoint_gradients()

    def _with_adapter(self, model: Any, peft: Any) -> Any:
        """`model` itself, or wrapped in a new peft adapter (`peft="lora"` or a peft config): then only the adapter
        and the task head train, and `save()` writes the adapter folder."""
        from . import adapters

        if peft is None and not adapters.is_adapter(model):  # a peft model given as the model trains as one
            return model
        if peft is not None and getattr(self, "_from_adapter_folder", False):
            raise InvalidInputError(
                "peft= on an adapter folder would save a second adapter whose base is the first one's base, without "
                "the first adapter. Save that tuner merged (tuner.save(dir, merged=True)) and start from the merged "
                "folder, or leave out peft= to go on training the merged model."
            )

        wrapped = adapters.wrap(model, peft, self.spec.name, getattr(self, "_new_weights", ()))
        n = adapters.counts(wrapped)
        logger.info("peft adapter: training %s of %s parameters (%.2f%%)", f"{n['trainable_params']:,}",
                    f"{n['total_params']:,}", 100 * n["trainable_params"] / max(n["total_params"], 1))
        return wrapped

    @property
    def is_adapter(self) -> bool:
        """True when this tuner trains a peft adapter (`peft=`) rather than the whole model."""
        from .adapters import is_adapter

        return is_adapter(self.model)

    def _work_dir(self, work_dir: str | os.PathLike[str] | None) -> Path:
        """Where fastai writes its files (the LR finder's checkpoint, `SaveModelCallback`'s `models/*.pth`,
        `CSVLogger`'s history): `work_dir`, else a temporary folder removed with the tuner."""
        if work_dir is not None:
            Path(work_dir).mkdir(parents=True, exist_ok=True)
            return Path(work_dir)
        tmp = tempfile.mkdtemp(prefix="adapt-work-")
        weakref.finalize(self, shutil.rmtree, tmp, True)
        return Path(tmp)

    def _resolve_metrics(self, metrics: Any) -> Any:
        """The default metrics for None; metric names (`"accuracy"`, `NERMetric.F1`) replaced by the task's metric."""
        if metrics is None:
            return self.default_metrics()
        items = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        if not any(isinstance(m, str) for m in items):
            return metrics
        available = self.named_metrics()
        out = []
        for m in items:
            if not isinstance(m, str):
                out.append(m)
                continue
            name = self.metric_aliases.get(str(m), str(m))
            if name not in available:
                valid = sorted(available) + sorted(self.metric_aliases)
                raise InvalidChoiceError(unknown_name("metric", str(m), valid, type(self).__name__))
            out.append(available[name])
        # views of one shared validation scorer (QA, seq2seq): the first chosen view must be the one that collects
        views = [m for m in out if hasattr(m, "owner") and hasattr(m, "key")]
        for k, view in enumerate(views):
            view.owner = k == 0
        return out

    def named_metrics(self) -> dict[str, Any]:
        """The metrics this task can compute by name (`metrics=["accuracy"]`): name -> a new fastai metric."""
        return {str(getattr(m, "name", None) or getattr(m, "__name__", m)): m for m in self.default_metrics()}

    @property
    def loss_func(self) -> Any:
        """The fastai loss in use (read-only; pass `loss_func=` to the constructor to change it)."""
        return self.learn.loss_func

    @property
    def metrics(self) -> Any:
        """The fastai metrics reported each epoch, each with a `.name` (read-only)."""
        return self.learn.metrics

    @property
    def opt_func(self) -> Any:
        """The fastai optimizer constructor (read-only)."""
        return self.learn.opt_func

    def _set_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Set the declared task options as attributes; return the rest, which must be fastai `Learner` arguments."""
        import inspect

        from fastai.learner import Learner

        learner = [p for p in inspect.signature(Learner.__init__).parameters if p not in ("self", "dls", "model")]
        mine = {o.name for o in self.options}
        values = {**defaults(self.options), **check_options({k: v for k, v in kwargs.items() if k in mine}, self.options)}
        for name, value in values.items():
            setattr(self, name, value)
        rest = {k: v for k, v in kwargs.items() if k not in mine}
        unknown = sorted(set(rest) - set(learner))
        if unknown:
            accepted = sorted(mine) + [f"fastai Learner's {p}" for p in learner]
            raise InvalidInputError(unknown_name("argument", unknown[0], accepted, type(self).__name__))
        return rest

    @property
    def spec(self) -> TaskSpec:
        """This tuner's task declaration."""
        from .tasks import get_task

        return get_task(self.task)

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
            raise InvalidChoiceError(f"mixed_precision must be None, 'fp16' or 'bf16', got {mixed_precision!r}.")
        if self.device.type != "cuda":
            warnings.warn(f"mixed_precision={mp!r} needs a CUDA device; training in fp32 on {self.device}.", stacklevel=3)
            return
        self.learn = self.learn.to_fp16() if mp == "fp16" else self.learn.to_bf16()

    def _checkpoint_gradients(self) -> None:
        """The model's own gradient checkpointing: activations recomputed in the backward pass, less memory."""
        if not getattr(self.model, "supports_gradient_checkpointing", False):
            raise InvalidInputError(
                f"{type(self.model).__name__} does not support gradient checkpointing; pass gradient_checkpointing=False."
            )
        self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if getattr(self.model.config, "use_cache", False):
            self.model.config.use_cache = False  # a generation cache cannot be kept while activations are recomputed

    # -- what a task provides -------------------------------------------------------------------------
    def _check_data(self, dls: Any) -> Any:
        """The `TaskDatasets` behind `dls`, if they are of the kind this task trains on."""
        dsets = getattr(dls, "task_datasets", None)
        kind = self.spec.datasets
        if not isinstance(dsets, kind):
            raise InvalidInputError(f"{type(self).__name__} needs dataloaders built by {kind.__name__}(...).dataloaders().")
        return dsets

    def _classes(self, dls: Any) -> list[str]:
        """The labels the model predicts (none for generation and QA)."""
        return []

    def default_loss(self) -> Any:
        """The loss used when `loss_func` is not given."""
        raise NotImplementedError

    def default_metrics(self) -> list[Any]:
        """The fastai metrics used when `metrics` is not given (named as `spec.metrics`)."""
        return []

    def _manifest(self) -> dict[str, Any]:
        """Task entries of `adapt.json` besides the task, labels, base model and the data settings."""
        return {}

    # -- the model ------------------------------------------------------------------------------------
    def _load_model(self, model_name: Any) -> Any:
        """A model object, or `model_name` (hub id, folder or adapt save) loaded with the task's head.

        An adapt save of another task, or with other labels, is refused rather than silently re-headed.
        """
        import transformers

        from .adapters import is_adapter, is_adapter_folder, load_adapter_model
        from .modelio import resolve_model_source

        if isinstance(model_name, transformers.PreTrainedModel) or is_adapter(model_name):
            return self._check_model(model_name)
        src = resolve_model_source(model_name)
        name = type(self).__name__
        if src.kind == "flair":
            raise WrongTaskError(f"{model_name!r} is a flair model; {name} fine-tunes transformers models.")
        saved = (src.manifest or {}).get("task")
        if saved not in (None, self.spec.saved_task, *self.also_loads):
            raise WrongTaskError(f"{model_name!r} holds a {saved!r} model, not a {self.spec.name!r} model.")
        labels = (src.manifest or {}).get("labels")
        if labels is not None and self.classes and list(labels) != list(self.classes):
            raise UnknownLabelError(f"The saved model's labels {labels} differ from the data's labels {list(self.classes)}.")
        try:
            config = transformers.AutoConfig.from_pretrained(src.location, trust_remote_code=False)
        except OSError as e:
            raise ModelNotFoundError(f"Could not load {model_name!r} (offline, or not a model): {e}") from e
        except ValueError as e:  # an unknown model type, or a config that needs its own code run
            raise CorruptModelError(f"The config of {model_name!r} cannot be used as it is: {e}") from e
        if is_adapter_folder(src.location):  # an adapter save goes on training as its merged model
            self._from_adapter_folder = True
            auto = getattr(transformers, self.spec.auto_class)
            return self._check_model(load_adapter_model(src.location, auto, config, self.adapter_base))
        try:
            return self._from_pretrained(src.location, config)
        except OSError as e:
            raise ModelNotFoundError(f"Could not load {model_name!r} (offline, or not a model): {e}") from e

    def _check_model(self, model: Any) -> Any:
        """Hook: refuse a model object this task cannot train."""
        return model

    def _padded(self, model: Any) -> Any:
        """`model`, its config and the tokenizer padding alike (`pad_alike`: EOS for decoder-only models)."""
        from .modelio import pad_alike

        pad_alike(model, self.tokenizer)
        return model

    def _from_pretrained(self, location: str, config: Any) -> Any:
        """Load the task's auto class; a labelled task gets a head sized to `self.classes`."""
        import transformers

        from .modelio import check_task_head

        check_task_head(config, self.spec.auto_class, self.spec.name, self.base_model)
        auto = getattr(transformers, self.spec.auto_class)
        kwargs = self._head_kwargs(config) if self.classes else {"config": config}
        try:  # a labelled head reloads the config with the label entries; others load as configured
            model, info = auto.from_pretrained(location, trust_remote_code=False, output_loading_info=True, **kwargs)
        except ValueError as e:
            raise WrongTaskError(f"{location!r} has no {self.spec.auto_class} head class in transformers: {e}") from e
        self._new_weights = sorted({*info.get("missing_keys", ()), *(k for k, *_ in info.get("mismatched_keys", ()))})
        return model

    def _head_kwargs(self, config: Any) -> dict[str, Any]:
        from .modelio import is_task_head

        head = getattr(config, "architectures", None) or []
        resize = bool(head) and is_task_head(head[0], self.spec.auto_class, self.spec.heads)
        resize = resize and config.num_labels != len(self.classes)
        if resize:  # a fine-tuned head of another size: start a new head rather than fail on shapes
            warnings.warn(
                f"{self.base_model!r} has a {config.num_labels}-class head; starting a new {len(self.classes)}-class head.",
                stacklevel=4,
            )
        return {
            "num_labels": len(self.classes),
            "id2label": dict(enumerate(self.classes)),
            "label2id": {c: i for i, c in enumerate(self.classes)},
            "ignore_mismatched_sizes": resize,
            **self._config_kwargs(),
        }

    def _config_kwargs(self) -> dict[str, Any]:
        """Hook: extra config entries for the head (e.g. `problem_type`)."""
        return {}

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

    def _frozen_groups(self) -> int:
        """How many layer groups `freeze`/`freeze_to` froze (0: none)."""
        return int(getattr(self.learn.opt, "frozen_idx", 0) or 0)

    # -- learning rate -------------------------------------------------------------------------------
    def lr_find(
        self,
        start_lr: float = 1e-6,
        end_lr: float = 1e-1,
        num_it: int = 30,
        show_plot: bool = False,
        save_plot: str | os.PathLike[str] | None = None,
    ) -> Any:
        """Run fastai's LR finder (cheap: `num_it` batches) and return an `LRSuggestion` fit for fine-tuning.

        The choice is one tenth of the LR at the lowest loss, at most 1e-4 when the whole model trains (5e-4 for a
        LoRA adapter, or with layer groups frozen): see `adapt.engine.suggest_fine_tune_lr` and `bench/defaults.py`.
        Weights are restored afterwards. The suggestion is also kept in `tuner.lr_suggestion`. `show_plot` draws
        the loss against the LR with the chosen LR marked (shown in a notebook); `save_plot=path` writes it.
        """
        from .distributed import is_main_process
        from .engine import ADAPTER_MAX_LR, FULL_MAX_LR, suggest_fine_tune_lr

        self.learn.lr_find(start_lr=start_lr, end_lr=end_lr, num_it=num_it, show_plot=False, suggest_funcs=None)
        rec = self.learn.recorder
        lrs, losses = [float(x) for x in rec.lrs], [float(x) for x in rec.losses]
        skip = num_it // 10
        s = suggest_fine_tune_lr(
            lrs[skip:-5] if len(lrs) > skip + 10 else lrs, losses[skip:-5] if len(lrs) > skip + 10 else losses,
            hi=ADAPTER_MAX_LR if self.is_adapter or self._frozen_groups() else FULL_MAX_LR,
        )
        if show_plot or save_plot is not None:
            import matplotlib.pyplot as plt

            from .plots import save_figure

            rec.plot_lr_find(suggestions=[(s.chosen, min(losses))], nms=["chosen"])
            fig = plt.gcf()
            fig.axes[0].set_title(f"LR finder: chosen {s.chosen:.2e}")
            save_figure(fig, save_plot)
            if not show_plot:
                plt.close(fig)
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
        *,
        accumulate: int = 1,
        monitor: str | None = None,
        early_stopping: int | None = None,
        keep_best: bool = False,
        report_to: str | Sequence[str] | None = None,
        checkpoint_every: int | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        **fit_kwargs: Any,
    ) -> dict[str, float]:
        """Train for `epochs` total epochs with a fastai policy; `lr=None` runs `lr_find` first and uses its choice.

        `lr` may be a `slice(lo, hi)` for discriminative rates across layer groups. Returns the metrics of the
        weights it ends with: the last epoch's, or the kept epoch's with `keep_best`. Built on fastai's callbacks:
        - `accumulate=N` steps the optimizer every N batches (`GradientAccumulation`): an effective batch N times
          the loader's;
        - `keep_best=True` ends with the weights of the epoch best at `monitor` (`SaveModelCallback`; the
          checkpoint is `models/best.pth` under the tuner's `work_dir`), and `history()` marks that epoch;
        - `early_stopping=P` stops after P epochs without improving `monitor` (`EarlyStoppingCallback`);
        - `monitor` is `"valid_loss"` unless given: any name of the metrics table (`train_loss`, `valid_loss`, the
          metrics); losses improve downwards, the rest upwards;
        - `report_to="csv"` writes `history.csv` to the `work_dir` (the metrics table), `"tensorboard"` event files to
          `work_dir/runs` (`TensorBoardCallback`; needs tensorboard), `"wandb"` a W&B run under `work_dir/wandb`
          (needs wandb; `WANDB_MODE=offline` works without a network); a list asks for several.
          Each records the hyper-parameters and the training record too (`adapt.tracking`).
        - `checkpoint_every=N` writes a resumable checkpoint every N epochs and after the last, atomically, to
          `work_dir/checkpoints/last.pt` (the tuner needs an explicit `work_dir=`); `resume_from=path` (that file
          or its folder) continues the run from it: the same epochs, strategy, lr, `accumulate`, batch size,
          training-set size, max_length and frozen layer groups (checked; not with `keep_best`/`early_stopping`
          yet), ending with the weights an uninterrupted run would have. After Ctrl-C the last checkpoint stays
          usable; the log says where.
        """
        strategy = Strategy(strategy)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise InvalidInputError(f"epochs must be a positive integer (total epochs), got {epochs!r}.")
        check_lr(lr)
        self._check_fit_kwargs(strategy, fit_kwargs)
        from . import tracking
        from .distributed import broadcast_object, distributed_ctx, is_main_process

        extra = self._training_callbacks(accumulate, monitor, early_stopping, keep_best)
        trackers = tracking.parse(report_to)
        self._check_checkpointing(checkpoint_every, resume_from, keep_best or early_stopping is not None, accumulate)
        on_cpu = self.device.type == "cpu"
        start, given = time.perf_counter(), lr
        resumed = self._resume_state(resume_from)
        if lr is None and resumed is not None:  # the interrupted run's own rate, not a new LR search
            lr = resumed["run"]["lr"]
        if lr is None:  # under torchrun / accelerate launch every rank uses rank 0's choice
            lr = broadcast_object(self.lr_find().chosen, cpu=on_cpu)
        if is_main_process():
            logger.info("tune: %d epoch(s), %s, lr %s", epochs, strategy.value, lr_json(lr))
        run = {"epochs": epochs, "strategy": strategy.value, "lr": lr if isinstance(lr, slice) else lr_json(lr),
               "accumulate": accumulate, "batch_size": getattr(self.dls.train, "bs", None),
               "train_size": getattr(self.dls.train, "n", None), "max_length": getattr(self.datasets, "max_length", None),
               "frozen_groups": self._frozen_groups()}
        start_epoch = self._restore(resumed, run, str(resume_from))
        given_cbs = list(callbacks) if isinstance(callbacks, (list, tuple)) else [] if callbacks is None else [callbacks]
        saver = None
        if checkpoint_every is not None:
            from .checkpoint import make_callback

            saver = make_callback(self.checkpoint_path, checkpoint_every, start_epoch, run, resumed)
            extra.append(saver)
        hparams = {**self._hparams(accumulate), **run}
        tracked = tracking.Trackers(trackers, Path(self.learn.path), hparams, start_epoch, main=is_main_process(),
                                    earlier=(resumed or {}).get("values", [])[:start_epoch])
        cbs = [*given_cbs, *extra, *tracked.callbacks] or None
        try:  # the trackers end (files closed, the W&B run finished) however the call ends
            with distributed_ctx(self.learn, cpu=on_cpu), self._interrupts(saver):
                self._fit(epochs, lr, strategy, cbs, start_epoch=start_epoch, **fit_kwargs)
            if resumed is not None:  # the metrics rows of the epochs run before the interruption
                self.learn.recorder.values[:start_epoch] = resumed["values"][:start_epoch]
            # snapshot now: fastai's get_preds/validate (used by evaluate and threshold tuning) reset the Recorder
            self._history = self._recorded_history()
            if keep_best:
                self._mark_best(monitor or "valid_loss")
            self._losses = self._recorded_losses()
            self._after_tune()
            warning = self._learning_check()
            self._training = self._training_record(epochs, strategy, given, lr, time.perf_counter() - start)
            self._training["warnings"] = [warning] if warning else []
            tracked.finish(hparams, self._training)
        finally:
            tracked.close()
        return self.final_metrics()

    # -- hyperparameter search ---------------------------------------------------------------------------
    def search(
        self,
        n_trials: int = 10,
        space: dict[str, Any] | None = None,
        monitor: str | None = None,
        max_epochs: int = 3,
        seed: int = 0,
        storage: str | None = None,
        study_name: str | None = None,
        timeout: float | None = None,
        **tune_kwargs: Any,
    ) -> SearchResult:
        """Search learning rate, epochs (1 to `max_epochs`), batch size, weight decay and the task's own settings
        (class weights for classification, unless given) with Optuna (`pip install 'adapt-tuner[search]'`):
        `n_trials` short `tune` runs on the same splits, each from this tuner's current weights, `seed` and a new
        optimizer (frozen layer groups stay frozen), scored by `monitor` on the validation split (`valid_loss` unless
        given); `tune_kwargs` (`strategy`, `accumulate`, ...) go to every trial and to `tune_best`. Returns a
        `SearchResult` (also `tuner.last_search`); afterwards the tuner is as it was (weights, training record,
        history). `tuner.tune_best()` then trains with the best settings. `space` replaces the default: a list of
        choices or a (low, high) range per setting (`{"lr": (1e-5, 1e-3), "batch_size": [8, 16]}`). Trials run one
        after another; workers given the same `storage` (an Optuna RDB URL) and `study_name` share one study.
        """
        from .search import search

        self.last_search = search(self, n_trials, space, monitor or "valid_loss", max_epochs, seed,
                                  {"storage": storage, "study_name": study_name, "timeout": timeout}, tune_kwargs)
        return self.last_search

    def tune_best(self, result: SearchResult | None = None, **tune_kwargs: Any) -> dict[str, float]:
        """Train with the best settings of a search (`result`, else `tuner.last_search`): the batch size and task
        settings are set on the tuner, epochs, lr and weight decay go to `tune` with the search's `tune_kwargs` (those
        given here win), from the search's seed: from the weights the search started with, it repeats the best
        trial. The training record and the card name the search and its best trial."""
        from .search import task_settings

        result = result if result is not None else self.last_search
        if result is None:
            raise InvalidInputError("tune_best() trains with the settings tuner.search(...) found; no search has run.")
        self._apply_settings(task_settings(result.best))
        self._restart(result.seed)  # as the trials started: from the same weights, the best trial again
        call = {**result.tune_call(), **tune_kwargs}
        metrics = self.tune(call.pop("epochs"), **call)
        self._training["search"] = result.to_dict()
        return metrics

    def _restart(self, seed: int) -> None:
        """Start training as from scratch: seeded, a new optimizer (with the same layer groups frozen), and the
        training loader's own shuffling RNG seeded too (fastai's loaders draw their order from an RNG of their own,
        which runs on across runs)."""
        import random

        from .utils import set_seed

        frozen = self._frozen_groups()
        set_seed(seed)
        self.learn.opt = None
        if frozen:
            self.learn.freeze_to(frozen)
        if hasattr(self.dls.train, "rng"):
            self.dls.train.rng = random.Random(seed)

    def _search_space(self) -> dict[str, Any]:
        """Hook: the task's own settings to search by default, with their default choices."""
        return {}

    def _searchable(self) -> tuple[str, ...]:
        """Hook: the task's own settings a search may set (`_apply_settings` knows them)."""
        return ()

    def _search_state(self) -> tuple[str, ...]:
        """The attributes a search's trials change and it puts back (tasks add their own)."""
        return ("_training", "_history", "_losses", "lr_suggestion")

    def _apply_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Set searched settings on the tuner; returns the values they replaced. Tasks extend it for their own."""
        old = {}
        if "batch_size" in settings:
            old["batch_size"] = self.dls.train.bs
            self.dls.train.bs = int(settings["batch_size"])
        return old

    @property
    def checkpoint_path(self) -> Path:
        """Where `tune(checkpoint_every=N)` writes its resumable checkpoint."""
        from .checkpoint import CHECKPOINT_FILE

        return Path(self.learn.path) / "checkpoints" / CHECKPOINT_FILE

    def _check_checkpointing(self, every: int | None, resume_from: Any, tracks_best: bool, accumulate: int) -> None:
        from .errors import as_given

        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise InvalidInputError(f"checkpoint_every is a number of epochs (a positive integer), got {every!r}.")
        if (every is not None or resume_from is not None) and accumulate > 1:
            self._check_whole_steps(accumulate)
        if every is not None and not self._work_dir_given:
            raise InvalidInputError(
                f"{as_given('checkpoint_every')} needs a folder that outlives this process: build the tuner with "
                "work_dir=... (the checkpoint goes to <work_dir>/checkpoints/last.pt)."
            )
        if resume_from is not None and tracks_best:
            raise InvalidInputError(f"{as_given('resume_from')} does not restore keep_best or early_stopping's tracking "
                                    "yet; resume without them, or start a new run.")

    def _check_whole_steps(self, accumulate: int) -> None:
        """With checkpoints, every epoch must end on an optimizer step: fastai's `GradientAccumulation` counts
        samples (`accumulate` full batches), so a gradient left over at an epoch's end would straddle a checkpoint."""
        from .distributed import world_size

        bs = int(getattr(self.dls.train, "bs", 1))
        per_rank = -(-int(self.dls.train.n) // world_size())  # a data-parallel rank's share, padded
        if getattr(self.dls.train, "drop_last", False):
            per_rank -= per_rank % bs  # a short last batch is dropped, not accumulated
        step = accumulate * bs
        if per_rank % step:
            raise InvalidInputError(
                f"checkpoints with accumulate={accumulate} need epochs of whole optimizer steps: {per_rank} training "
                f"samples{' per rank' if world_size() > 1 else ''} is not a multiple of {accumulate} x batch size "
                f"{bs} = {step}, so a gradient would be split across a checkpoint. Change the batch size or "
                "accumulate (or the training set's size)."
            )

    def _resume_state(self, resume_from: Any) -> dict[str, Any] | None:
        if resume_from is None:
            return None
        from .checkpoint import read

        return read(resume_from)

    def _restore(self, state: dict[str, Any] | None, run: dict[str, Any], where: str) -> int:
        """Load a checkpoint into the learner (after checking it continues this run); the epoch to start at."""
        if state is None:
            return 0
        from .checkpoint import check_same_run, restore

        check_same_run(state, run, where)
        start_epoch = restore(state, self.learn)
        logger.info("resuming %s after epoch %d of %d", where, start_epoch, run["epochs"])
        return start_epoch

    @contextlib.contextmanager
    def _interrupts(self, saver: Any) -> Iterator[None]:
        """On Ctrl-C while checkpointing (`saver`), say where this run's last checkpoint is and how to resume."""
        try:
            yield
        except KeyboardInterrupt:
            if saver is not None and saver.written is not None:
                from .errors import as_given

                resume = as_given("resume_from", str(self.checkpoint_path))
                how = f"adapt tune with the same arguments and {resume}" if resume.startswith("--") else f"tune(..., {resume})"
                logger.warning("interrupted: the last checkpoint is %s (after epoch %d); %s continues the run",
                               self.checkpoint_path, saver.written, how)
            elif saver is not None:
                logger.warning("interrupted before the first checkpoint of this run was written")
            raise

    def _training_callbacks(
        self, accumulate: int, monitor: str | None, early_stopping: int | None, keep_best: bool
    ) -> list[Any]:
        """The fastai callbacks that `tune`'s keywords ask for, after checking every keyword."""
        import numpy as np
        from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
        from fastai.callback.training import GradientAccumulation

        if not isinstance(accumulate, int) or isinstance(accumulate, bool) or accumulate < 1:
            raise InvalidInputError(f"accumulate must be a positive integer (batches per optimizer step), got {accumulate!r}.")
        if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
            raise InvalidInputError(f"early_stopping is a patience in epochs (a positive integer), got {early_stopping!r}.")
        names = ["train_loss", "valid_loss", *(getattr(m, "name", str(m)) for m in self.learn.metrics)]
        if monitor is not None and monitor not in names:
            raise InvalidChoiceError(unknown_name("monitor", monitor, names, "this tuner's metrics"))
        watch = monitor or "valid_loss"
        comp = np.less if lower_is_better(watch) else np.greater  # fastai guesses from the name: not "perplexity"
        cbs: list[Any] = []
        if accumulate > 1:
            bs = int(getattr(self.dls.train, "bs", 1))
            logger.info("accumulating %d batches of %d: an effective batch of %d", accumulate, bs, accumulate * bs)
            cbs.append(GradientAccumulation(n_acc=accumulate * bs))
        if keep_best:
            cbs.append(SaveModelCallback(monitor=watch, comp=comp, fname="best", with_opt=False))
        if early_stopping is not None:
            cbs.append(EarlyStoppingCallback(monitor=watch, comp=comp, patience=early_stopping))
        return cbs

    def _hparams(self, accumulate: int) -> dict[str, Any]:
        """The run's settings as trackers record them (the rest of the record follows when it ends)."""
        return {"task": self.spec.name, "base_model": self._base_model_id()[0],
                "batch_size": getattr(self.dls.train, "bs", None), "accumulate": accumulate,
                "max_length": getattr(self.datasets, "max_length", None),
                "adapter": self.manifest().get("adapter", {}).get("type") if self.is_adapter else None}

    def _mark_best(self, monitor: str) -> None:
        """Mark the epoch whose weights `keep_best` restored (the best value of `monitor`) in the history."""
        values = [(row[monitor], row["epoch"]) for row in self._history if monitor in row and not math.isnan(row[monitor])]
        if not values:
            return
        lower = lower_is_better(monitor)  # on a tie the earlier epoch wins: SaveModelCallback keeps only improvements
        best = min(values, key=lambda ve: (ve[0] if lower else -ve[0], ve[1]))[1]
        for row in self._history:
            row["best"] = row["epoch"] == best

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights the last `tune(keep_best=True)` kept (None otherwise)."""
        return next((int(row["epoch"]) for row in self._history if row.get("best")), None)

    def _training_record(self, epochs: int, strategy: Strategy, given: Any, lr: Any, seconds: float) -> dict[str, Any]:
        """What `adapt.json` and the model card keep of the last `tune` call."""
        from . import __version__
        from .utils import last_seed

        found = self.lr_suggestion
        passed_back = found is not None and isinstance(given, float) and float(given) == float(found)
        suggestion = given if hasattr(given, "reason") else found if given is None or passed_back else None
        base, local = self._base_model_id()
        return {
            "base_model": base,
            "base_model_is_local": local,
            "epochs": epochs,
            "strategy": strategy.value,
            "lr": lr_json(given),
            "lr_chosen": lr_json(lr),
            "lr_reason": getattr(suggestion, "reason", None),
            "batch_size": getattr(self.dls.train, "bs", None),
            "max_length": getattr(self.datasets, "max_length", None),
            "train_size": len(self.dls.train.dataset),
            "valid_size": len(self.dls.valid.dataset),
            "history": [{k: _finite(v) for k, v in row.items()} for row in self.history()],
            "epochs_run": len(self._history),
            "best_epoch": self.best_epoch,
            "seed": last_seed(),
            "elapsed_s": round(seconds, 1),
            "adapt_version": __version__,
        }

    def _base_model_id(self) -> tuple[Any, bool]:
        """(the base model's name for cards and manifests, True when it names only a local folder)."""
        from .modelio import base_model_id

        return (self.base_model_name, False) if self.base_model_name else base_model_id(self.base_model)

    @property
    def training_record(self) -> dict[str, Any]:
        """The last `tune` call: base model, epochs, strategy, lr (given and chosen), batch size, sizes, history,
        seed, time and adapt version (empty before training); `save()` writes it to `adapt.json` and the card."""
        return dict(self._training)

    def _check_fit_kwargs(self, strategy: Strategy, fit_kwargs: dict[str, Any]) -> None:
        """Refuse a keyword neither `tune` nor the strategy's fastai policy takes (`early_stop=2`), before training,
        naming the closest one; fastai would raise a bare TypeError after the LR search."""
        import inspect

        policy = {Strategy.OneCycle: "fit_one_cycle", Strategy.CosineAnnealing: "fit_flat_cos",
                  Strategy.SGDR: "fit_sgdr"}.get(strategy, "fit")
        own = {"n_epoch", "n_cycles", "cycle_len", "cycle_mult", "lr", "lr_max", "cbs", "self", "start_epoch"}
        takes = [n for n in inspect.signature(getattr(self.learn, policy)).parameters if n not in own]
        tune_own = [n for n, p in inspect.signature(self.tune).parameters.items() if p.kind is p.KEYWORD_ONLY]
        for name in fit_kwargs:
            if name not in takes and name != "start_epoch":
                raise InvalidChoiceError(unknown_name("tune() keyword", name, [*tune_own, *takes], f"strategy {strategy.value}"))

    def _fit(self, epochs: int, lr: Any, strategy: Strategy, cbs: Any, **fit_kwargs: Any) -> None:
        if not fit_kwargs.get("start_epoch"):
            fit_kwargs.pop("start_epoch", None)  # as before for fit methods and callers that do not know it
        if strategy is Strategy.OneCycle:
            self.learn.fit_one_cycle(epochs, lr_max=lr, cbs=cbs, **fit_kwargs)
        elif strategy is Strategy.CosineAnnealing:
            self._fit_flat_cos(epochs, lr, cbs, **fit_kwargs)
        elif strategy is Strategy.SGDR:
            n_cycles, cycle_len = sgdr_cycles(epochs)
            self.learn.fit_sgdr(n_cycles, cycle_len, lr_max=lr, cycle_mult=2, cbs=cbs, **fit_kwargs)
        else:
            self.learn.fit(epochs, lr=lr, cbs=cbs, **fit_kwargs)

    def _fit_flat_cos(self, epochs: int, lr: Any, cbs: Any, div_final: float = 1e5, pct_start: float = 0.75,
                      start_epoch: int = 0, **fit_kwargs: Any) -> None:
        """fastai's `fit_flat_cos` policy (flat `lr`, then cosine annealing to `lr / div_final`), with its
        `start_epoch` honoured: `Learner.fit_flat_cos` accepts it but always starts at 0 (fastai 2.8)."""
        if start_epoch == 0:
            self.learn.fit_flat_cos(epochs, lr=lr, cbs=cbs, div_final=div_final, pct_start=pct_start, **fit_kwargs)
            return
        import numpy as np
        from fastai.callback.schedule import ParamScheduler, combined_cos
        from fastcore.foundation import L

        if self.learn.opt is None:
            self.learn.create_opt()
        self.learn.opt.set_hyper("lr", self.learn.lr if lr is None else lr)
        lrs = np.array([h["lr"] for h in self.learn.opt.hypers])
        scheds = {"lr": combined_cos(pct_start, lrs, lrs, lrs / div_final)}
        self.learn.fit(epochs, cbs=ParamScheduler(scheds) + L(cbs), start_epoch=start_epoch, **fit_kwargs)

    def _after_tune(self) -> None:
        """Hook for tasks (e.g. threshold tuning after training)."""

    def _learning_warning(self) -> str | None:
        """Hook: why the tuned model's validation predictions show it learned nothing useful (one class for every
        text, no entity, empty outputs), or None. `tune()` logs it as a WARNING and records it in the card."""
        return None

    def _learning_check(self) -> str | None:
        """`_learning_warning`, on every rank (data-parallel validation is sharded: each must take part) and logged
        by the main one; a check that cannot run is logged, never raised over a finished run."""
        from .distributed import is_main_process

        if not len(self.dls.valid.dataset):
            return None
        try:
            warning = self._learning_warning()
        except Exception as e:  # the run itself succeeded: its weights and record must not be lost to the check
            logger.warning("could not check what the model learned (%s: %s)", type(e).__name__, e)
            return None
        if warning and is_main_process():
            logger.warning("%s", warning)
        return warning

    def history(self) -> list[dict[str, float]]:
        """Per-epoch losses and metrics of the last `tune` call, as fastai printed them."""
        return list(self._history)

    def _recorded_history(self) -> list[dict[str, float]]:
        rec = self.learn.recorder
        names = [n for n in rec.metric_names if n not in ("epoch", "time")]
        return [
            {"epoch": i, **{n: float(v) for n, v in zip(names, vals, strict=False) if v is not None}}
            for i, vals in enumerate(rec.values)
        ]

    def _recorded_losses(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        rec = self.learn.recorder
        names = list(rec.metric_names[1:-1])  # the values' columns: no epoch, no time
        valid = names.index("valid_loss") if "valid_loss" in names else None
        train = [(i, float(v)) for i, v in enumerate(rec.losses)]
        ends = [int(i) for i in rec.iters]
        points = [(ends[k], float(vals[valid])) for k, vals in enumerate(rec.values)
                  if valid is not None and k < len(ends) and vals[valid] is not None]
        return train, points

    def plot_loss(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Training (per batch) and validation (per epoch) loss of the last `tune`, as a matplotlib Figure;
        `path=` also saves it."""
        from .plots import loss_figure, save_figure

        train, valid = getattr(self, "_losses", ([], []))
        if not train:
            raise InvalidInputError("No losses recorded yet: call tune() first.")
        return save_figure(loss_figure(train, valid), path)

    def final_metrics(self) -> dict[str, float]:
        """The metrics of the weights the model holds now (empty before training): the last epoch's, or with
        `keep_best=True` the best epoch's, whose weights were restored."""
        hist = self.history()
        last = next((row for row in hist if row.get("best")), hist[-1] if hist else {})
        return {k: v for k, v in last.items() if k != "best" and not (isinstance(v, float) and math.isnan(v))}

    # -- prediction and evaluation --------------------------------------------------------------------
    def predictor(self) -> Any:
        """The task's shared prediction path over this tuner's model (the one the Easy module builds from a folder)."""
        self._update_config()
        return self.spec.predictor.from_model(self.model, self.tokenizer, self.manifest())

    def predict(
        self, text: Any, bs: int = 32, detail_level: DetailLevel | str = DetailLevel.Low, **options: Any
    ) -> dict[str, Any]:
        """Predict for one input or a list; the same JSON-safe dict as the task's `Easy*` verb (options alike).
        `batch_size=` is accepted for `bs`."""
        from .inference import predict_json
        from .options import batch_size_option

        bs = batch_size_option(bs, 32, options, "bs")
        return predict_json(self.predictor(), text, self.spec.fields, bs, detail_level, options)

    def evaluate(self) -> dict[str, float]:
        """Validation loss and the metrics of every epoch (`spec.metrics`), on the validation split."""
        from .engine import without_progress

        with without_progress(self.learn):
            values = self.learn.validate()
        names = ["valid_loss"] + [getattr(m, "name", str(m)) for m in self.learn.metrics]
        return {n: float(v) for n, v in zip(names, values, strict=False)}

    # -- persistence ----------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The `adapt.json` entries of this model: task, labels, base model, data settings and task entries."""
        base, local = self._base_model_id()
        out: dict[str, Any] = {
            "task": self.spec.saved_task, "base_model": base, "base_model_is_local": local, **self.datasets.manifest()
        }
        if self.classes:
            out["labels"] = list(self.classes)
        if self._training:
            out["training"] = self._training
        if self.is_adapter:
            from .adapters import manifest_entry

            out["adapter"] = manifest_entry(self.model)
        return {**out, **self._manifest()}

    def save(
        self,
        directory: str | os.PathLike[str],
        card_data: dict[str, Any] | None = None,
        merged: bool = False,
        card_examples: bool = False,
    ) -> Path:
        """Atomically write a self-contained HF folder (safetensors, tokenizer, config), `adapt.json` (with the
        training record) and a model card (`README.md`; `card_data` adds Hub metadata such as `license`).

        A tuner with a peft adapter writes the adapter folder (adapter weights and config, the base's config, the
        tokenizer, the manifest); `merged=True` writes the merged plain transformers model instead, after checking
        that its outputs equal the adapter model's on validation batches. `card_examples=True` lets the card's
        snippets show a validation input (your data, in the README); without it they show placeholders.
        """
        if merged and self.is_adapter:
            with self._merged() as entry:
                return self._write(directory, extra_files={"README.md": self.model_card(card_data, card_examples)},
                                   manifest_extra={"merged_adapter": entry})
        return self._write(directory, extra_files={"README.md": self.model_card(card_data, card_examples)})

    @contextlib.contextmanager
    def _merged(self, n_batches: int = 2) -> Iterator[dict[str, Any]]:
        """While inside, `self.model` is the merged copy of the adapter model, checked to give the same outputs on
        `n_batches` validation batches (`adapt.adapters.merge_parity`)."""
        import itertools

        from .adapters import manifest_entry, merge_parity, merged_copy

        adapter_model = self.model
        entry = manifest_entry(adapter_model)
        merged = merged_copy(adapter_model).eval()
        batches = [b[0] for b in itertools.islice(self.dls.valid, n_batches)]
        entry["max_relative_diff"] = merge_parity(adapter_model, merged, batches, self.output_keys)
        self.model = merged
        try:
            yield entry
        finally:
            self.model = adapter_model

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        token: str | None = None,
        commit_message: str | None = None,
        card_data: dict[str, Any] | None = None,
    ) -> Any:
        """Save this model (card and training record included) and upload it to the Hub repo `repo_id`, creating
        the repo if needed; returns an `adapt.hub.PushResult`. Pushing a folder: `adapt.hub.push_to_hub`."""
        from .distributed import barrier, is_main_process
        from .hub import push_to_hub

        if not is_main_process():  # data-parallel ranks hold identical weights; rank 0 pushes (see `_write`)
            barrier()
            return None
        try:
            with tempfile.TemporaryDirectory(prefix="adapt-push-") as tmp:
                folder = self.save(Path(tmp) / repo_id.split("/")[-1], card_data=card_data)
                return push_to_hub(folder, repo_id, private=private, token=token, commit_message=commit_message)
        finally:
            barrier()

    def load(self, path: str | os.PathLike[str], device: Any = None) -> Tuner:
        """Replace the weights with those saved at `path` (a `save`d folder, or any model of this task), and its
        tokenizer when the folder has one, to predict or go on training; returns the tuner."""
        from .engine import HFModel
        from .modelio import load_tokenizer, resolve_model_source
        from .utils import default_device

        if device is not None:
            self.device = default_device(device)
            self.dls.to(self.device)
        src = resolve_model_source(path)
        if src.kind == "hf_dir" and (Path(src.location) / "tokenizer_config.json").exists():
            self.tokenizer = self.datasets._ready(load_tokenizer(src.location))  # padded, words ready, as in training
        self.model = self._padded(self._load_model(path)).to(self.device)
        self.learn.model = HFModel(self.model, self.output_keys)
        self.learn.opt = None  # a new optimizer for the new parameters at the next fit
        return self

    def export(
        self,
        path: str | os.PathLike[str],
        quantize: bool = False,
        onnx: bool = False,
        parity_texts: Sequence[Any] | None = None,
        min_agreement: float = 0.99,
        on_parity_fail: str = "raise",
        card_data: dict[str, Any] | None = None,
        card_examples: bool = False,
    ) -> Path:
        """Write the deployable artifact: the saved folder (model card included, `card_data` and `card_examples` as in
        `save`); a peft
        adapter is merged first (`save(merged=True)`), so the artifact is a plain transformers model.

        `quantize=True` adds an int8 copy (`model.int8.pt`, dynamic quantization of Linear layers);
        `onnx=True` adds `model.onnx`, an ONNX Runtime-optimized graph (int8 when `quantize` is also set; needs
        the `onnx` extra). Which copies a task allows comes from its declaration. The Easy modules and the server
        use these on CPU. Each is checked first: its predictions on held-out inputs (`parity_texts`, default: up
        to 200 validation inputs) must agree with fp32 at least `min_agreement` of the time, else `ParityError`
        (a warning with `on_parity_fail="warn"`).
        """
        from .distributed import barrier, is_main_process
        from .fastcopy import build_fast_copies, check_fast_copies

        if not is_main_process():  # only rank 0 exports (see `_write`)
            barrier()
            return Path(path)
        check_fast_copies(self.spec, quantize, onnx, on_parity_fail)
        texts: list[Any] = []
        if quantize or onnx:  # held-out inputs for the parity checks
            texts = list(parity_texts) if parity_texts is not None else self.heldout_texts()
        merging = self._merged() if self.is_adapter else contextlib.nullcontext(None)
        with merging as merged, tempfile.TemporaryDirectory(prefix="adapt-export-") as tmp:
            copies = build_fast_copies(self.predictor(), texts, Path(tmp), quantize, onnx, min_agreement, on_parity_fail)
            card = {"README.md": self.model_card(card_data, card_examples)}
            extra = {**copies.manifest, **({"merged_adapter": merged} if merged else {})}
            return self._write(path, extra_files=card, extra_writers=copies.writers, manifest_extra=extra)

    def heldout_texts(self, n: int = 200) -> list[Any]:
        """Up to `n` validation inputs as text (decoded from their token ids), for parity checks."""
        valid = self.dls.valid.dataset
        rows = valid.select(range(min(n, len(valid))))
        texts = [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in rows["input_ids"]]
        return [t for t in texts if t.strip()]

    def model_card(self, card_data: dict[str, Any] | None = None, examples: bool = False) -> str:
        """The model card (`README.md` of a save): Hub YAML metadata, the training record and how to use it; its
        snippets show a validation input with `examples=True`, else placeholders."""
        from .card import model_card

        mask = getattr(self.tokenizer, "mask_token", None)
        shown = {"card_examples": self.heldout_texts(1)} if examples else {}
        return model_card({**self.manifest(), **({"mask_token": mask} if mask else {}), **shown}, card_data)

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
        """Write the labels (and task entries) into `model.config` before saving or predicting."""
        if self.classes:
            cfg = self.model.config
            cfg.id2label = dict(enumerate(self.classes))
            cfg.label2id = {c: i for i, c in enumerate(self.classes)}


AdaptiveTuner = Tuner  # AdaptNLP's name for the task-agnostic tuner
