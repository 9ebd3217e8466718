"""The task-agnostic `Tuner`: a fastai `Learner` over a transformers model with a small surface.

`tune` checks its arguments, picks the learning rate, assembles fastai callbacks and calls the fit policy; what
each feature does is its callback: the Hugging Face glue (`adapt.engine.HFCallback`), fastai's own for accumulation,
keep-best and early stopping (`adapt.fitting`), checkpoints and resuming (`adapt.checkpoint`), the training record
and trackers (`adapt.tracking`) and a task's own (multi-label threshold tuning). Loading a model is
`adapt.loading`; saving, export, cards and the Hub are `adapt.publish`. fastai is imported when a Tuner is built,
never at `import adapt`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .enums import DetailLevel, Strategy
from .errors import InvalidInputError
from .fitting import check_lr, lower_is_better, lr_json, sgdr_cycles  # noqa: F401 - importable from here, as before
from .options import Option, check_options, defaults, options_signature
from .utils import console_logging

if TYPE_CHECKING:
    from .search import SearchResult
    from .tasks.base import TaskSpec

logger = logging.getLogger(__name__)

__all__ = ["AdaptiveTuner", "Tuner", "sgdr_cycles"]


class Tuner:
    """Fine-tune a transformers model with fastai: `tune`, `lr_find`, `predict`, `evaluate`, `save`, `export`.

    A task's tuner is bound to its declaration (`TaskSpec(tuner=...)` sets `spec` and `task`), declares its own keyword
    `options`, and hooks for what differs
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

        from . import fitting
        from .engine import HFCallback, hf_layer_groups
        from .utils import default_device

        fitting.load_fastai_extensions()
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
        self._losses: tuple[list[tuple[int, float]], list[tuple[int, float]]] = ([], [])
        self._default_metrics_used, self._default_loss_used = metrics is None, loss_func is None
        self.last_search: Any = None  # the SearchResult of the last `search`
        self._work_dir_given = work_dir is not None or "path" in learner_kwargs
        learner_kwargs.setdefault("path", fitting.work_dir(self, work_dir))
        self._training: dict[str, Any] = {}
        console_logging()
        chosen = self.default_metrics() if metrics is None else fitting.resolve_metrics(
            metrics, self.named_metrics, self.metric_aliases, type(self).__name__)
        self.learn = Learner(dls, self.model, loss_func=loss_func or self.default_loss(), metrics=chosen,
                             opt_func=opt_func or Adam, splitter=hf_layer_groups,
                             cbs=[HFCallback(self.output_keys), *_listed(additional_cbs)], **learner_kwargs)
        fitting.line_progress(self.learn)
        self.learn = fitting.mixed_precision(self.learn, self.device, mixed_precision)
        if gradient_checkpointing:
            fitting.checkpoint_gradients(self.model)

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
        from .fitting import learner_kwargs

        mine = {o.name for o in self.options}
        values = {**defaults(self.options), **check_options({k: v for k, v in kwargs.items() if k in mine}, self.options)}
        for name, value in values.items():
            setattr(self, name, value)
        return learner_kwargs(kwargs, mine, type(self).__name__)

    @property
    def spec(self) -> TaskSpec:
        """This tuner's task declaration (bound when the task declares it)."""
        from .tasks.base import spec_of

        return spec_of(type(self))

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails
        if name != "learn" and self.__dict__.get("expose_fastai_api") and "learn" in self.__dict__:
            return getattr(self.__dict__["learn"], name)
        raise AttributeError(
            f"{type(self).__name__!s} has no attribute {name!r}. The fastai Learner is `tuner.learn`; "
            "pass expose_fastai_api=True to reach its attributes on the tuner."
        )

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
        """A model object, or `model_name` (hub id, folder or adapt save) loaded with the task's head
        (`adapt.loading.load_for_training`)."""
        import transformers

        from .adapters import is_adapter
        from .loading import load_for_training

        if isinstance(model_name, transformers.PreTrainedModel) or is_adapter(model_name):
            return self._check_model(model_name)
        model, self._from_adapter_folder = load_for_training(
            self.spec, model_name, type(self).__name__, self.also_loads, self.classes, self.adapter_base, self._from_pretrained)
        return self._check_model(model) if self._from_adapter_folder else model

    def _check_model(self, model: Any) -> Any:
        """Hook: refuse a model object this task cannot train."""
        return model

    def _padded(self, model: Any) -> Any:
        """`model`, its config and the tokenizer padding alike (`pad_alike`: EOS for decoder-only models)."""
        from .modelio import pad_alike

        pad_alike(model, self.tokenizer)
        return model

    def _from_pretrained(self, location: str, config: Any) -> Any:
        """Hook: load the task's auto class; a labelled task gets a head sized to `self.classes`."""
        from .loading import with_head

        model, self._new_weights = with_head(self.spec, location, config, self.classes, self.base_model, self._config_kwargs())
        return model

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
        from .fitting import frozen_groups

        return frozen_groups(self.learn)

    # -- learning rate -------------------------------------------------------------------------------
    def lr_find(self, start_lr: float = 1e-6, end_lr: float = 1e-1, num_it: int = 30, show_plot: bool = False,
                save_plot: str | os.PathLike[str] | None = None) -> Any:
        """Run fastai's LR finder (cheap: `num_it` batches) and return an `LRSuggestion` fit for fine-tuning.

        The choice is one tenth of the LR at the lowest loss, at most 1e-4 when the whole model trains (5e-4 for a
        LoRA adapter, or with layer groups frozen): see `adapt.engine.suggest_fine_tune_lr` and `bench/defaults.py`.
        Weights are restored afterwards. The suggestion is also kept in `tuner.lr_suggestion`. `show_plot` draws
        the loss against the LR with the chosen LR marked (shown in a notebook); `save_plot=path` writes it.
        """
        from .distributed import is_main_process
        from .engine import ADAPTER_MAX_LR, FULL_MAX_LR
        from .fitting import find_lr
        from .plots import lr_find_figure

        hi = ADAPTER_MAX_LR if self.is_adapter or self._frozen_groups() else FULL_MAX_LR
        s, lrs, losses = find_lr(self.learn, start_lr, end_lr, num_it, hi)
        self.lr_suggestion = s
        if show_plot or save_plot is not None:
            lr_find_figure(lrs, losses, s.chosen, show_plot, save_plot)
        if is_main_process():
            logger.info("lr_find: raw suggestion %.3g, using %.3g (%s)", s.raw, s.chosen, s.reason)
        return s

    # -- training -------------------------------------------------------------------------------------
    def tune(self, epochs: int, lr: float | Sequence[float] | Any = None, strategy: Strategy | str = Strategy.OneCycle,
             callbacks: Any = None, *, accumulate: int = 1, monitor: str | None = None, early_stopping: int | None = None,
             keep_best: bool = False, report_to: str | Sequence[str] | None = None, checkpoint_every: int | None = None,
             resume_from: str | os.PathLike[str] | None = None, **fit_kwargs: Any) -> dict[str, float]:
        """Train for `epochs` total epochs with a fastai policy (`strategy`): `lr=None` runs `lr_find` first and uses
        its choice; `lr=slice(lo, hi)` spreads rates across layer groups. Returns the metrics of the weights it ends
        with. Each keyword is a fastai callback:
        - `accumulate=N` steps the optimizer every N batches (`GradientAccumulation`);
        - `keep_best=True` ends with the weights of the epoch best at `monitor` (`SaveModelCallback`), marked in `history()`;
        - `early_stopping=P` stops after P epochs without improving `monitor` (`EarlyStoppingCallback`);
        - `monitor` (default `"valid_loss"`) is a column of the metrics table; losses improve downwards, the rest upwards;
        - `report_to="csv"`, `"tensorboard"`, `"wandb"` or a list tracks the run under `work_dir` (`adapt.tracking`);
        - `checkpoint_every=N` writes a resumable `work_dir/checkpoints/last.pt` every N epochs (the tuner needs a
          `work_dir=`); `resume_from=path` continues that run, repeating its settings (`adapt.checkpoint`).
        Other keywords go to the fastai policy (`pct_start`, `wd`, ...)."""
        from .checkpoint import Resume
        from .distributed import distributed_ctx
        from .fitting import check_epochs, check_fit_kwargs, fit, fit_callbacks, run_settings
        from .tracking import parse, tune_record

        strategy, given, trackers = Strategy(strategy), lr, parse(report_to)
        check_epochs(epochs)
        check_lr(lr)
        check_fit_kwargs(self.learn, strategy, fit_kwargs, self.tune)
        fitting = fit_callbacks(self.learn, accumulate, monitor, early_stopping, keep_best)
        resume = Resume(self.checkpoint_path, checkpoint_every, resume_from, self._work_dir_given)
        resume.check(self.learn, accumulate, keep_best or early_stopping is not None)
        lr = self._choose_lr(lr if lr is not None else resume.lr)
        run = run_settings(self.learn, self.datasets, epochs, strategy, lr, accumulate)
        start_epoch = resume.restore(self.learn, run)
        kept = (monitor or "valid_loss") if keep_best else None  # the epoch keep_best restores is marked
        record = tune_record(self, run, trackers, start_epoch, resume.state, given, kept)
        cbs = [*_listed(callbacks), *fitting, *resume.callbacks(), *self._task_callbacks(), record, *record.trackers.callbacks]
        try:  # the trackers end (files closed, the W&B run finished) however the call ends
            with distributed_ctx(self.learn, cpu=self.device.type == "cpu"), resume.interrupts():
                fit(self.learn, epochs, lr, strategy, cbs, start_epoch=start_epoch, **fit_kwargs)
            self._history, self._losses, self._training = record.finish()
        finally:
            record.trackers.close()
        return self.final_metrics()

    def _choose_lr(self, lr: Any) -> Any:
        """`lr`, or the LR finder's choice: under torchrun / accelerate launch every rank uses rank 0's."""
        from .distributed import broadcast_object

        return broadcast_object(self.lr_find().chosen, cpu=self.device.type == "cpu") if lr is None else lr

    def _task_callbacks(self) -> list[Any]:
        """Hook: the task's own fastai callbacks for `tune` (multi-label threshold tuning after the fit)."""
        return []

    # -- hyperparameter search ---------------------------------------------------------------------------
    def search(self, n_trials: int = 10, space: dict[str, Any] | None = None, monitor: str | None = None,
               max_epochs: int = 3, seed: int = 0, storage: str | None = None, study_name: str | None = None,
               timeout: float | None = None, **tune_kwargs: Any) -> SearchResult:
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
        from .search import restart, task_settings

        result = result if result is not None else self.last_search
        if result is None:
            raise InvalidInputError("tune_best() trains with the settings tuner.search(...) found; no search has run.")
        self._apply_settings(task_settings(result.best))
        restart(self, result.seed)  # as the trials started: from the same weights, the best trial again
        call = {**result.tune_call(), **tune_kwargs}
        metrics = self.tune(call.pop("epochs"), **call)
        self._training["search"] = result.to_dict()
        return metrics

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

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights the last `tune(keep_best=True)` kept (None otherwise)."""
        return next((int(row["epoch"]) for row in self._history if row.get("best")), None)

    def _base_model_id(self) -> tuple[Any, bool]:
        """(the base model's name for cards and manifests, True when it names only a local folder)."""
        from .modelio import base_model_id

        return (self.base_model_name, False) if self.base_model_name else base_model_id(self.base_model)

    @property
    def training_record(self) -> dict[str, Any]:
        """The last `tune` call: base model, epochs, strategy, lr (given and chosen), batch size, sizes, history,
        seed, time and adapt version (empty before training); `save()` writes it to `adapt.json` and the card."""
        return dict(self._training)

    def _learning_warning(self) -> str | None:
        """Hook: why the tuned model's validation predictions show it learned nothing useful (one class for every
        text, no entity, empty outputs), or None. `tune()` logs it as a WARNING and records it in the card."""
        return None

    def history(self) -> list[dict[str, float]]:
        """Per-epoch losses and metrics of the last `tune` call, as fastai printed them."""
        return list(self._history)

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

    def save(self, directory: str | os.PathLike[str], card_data: dict[str, Any] | None = None, merged: bool = False,
             card_examples: bool = False) -> Path:
        """Atomically write a self-contained HF folder (safetensors, tokenizer, config), `adapt.json` (with the
        training record) and a model card (`README.md`; `card_data` adds Hub metadata such as `license`).

        A tuner with a peft adapter writes the adapter folder (adapter weights and config, the base's config, the
        tokenizer, the manifest); `merged=True` writes the merged plain transformers model instead, after checking
        that its outputs equal the adapter model's on validation batches. `card_examples=True` lets the card's
        snippets show a validation input (your data, in the README); without it they show placeholders.
        """
        from .publish import save

        return save(self, directory, card_data, merged, card_examples)

    def push_to_hub(self, repo_id: str, private: bool = False, token: str | None = None, commit_message: str | None = None,
                    card_data: dict[str, Any] | None = None) -> Any:
        """Save this model (card and training record included) and upload it to the Hub repo `repo_id`, creating
        the repo if needed; returns an `adapt.publish.PushResult`. Pushing a folder: `adapt.publish.push_to_hub`."""
        from .publish import push

        return push(self, repo_id, private, token, commit_message, card_data)

    def load(self, path: str | os.PathLike[str], device: Any = None) -> Tuner:
        """Replace the weights with those saved at `path` (a `save`d folder, or any model of this task), and its
        tokenizer when the folder has one, to predict or go on training; returns the tuner."""
        from .loading import reload

        return reload(self, path, device)

    def export(self, path: str | os.PathLike[str], quantize: bool = False, onnx: bool = False,
               parity_texts: Sequence[Any] | None = None, min_agreement: float = 0.99, on_parity_fail: str = "raise",
               card_data: dict[str, Any] | None = None, card_examples: bool = False) -> Path:
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
        from .publish import export

        return export(self, path, quantize, onnx, parity_texts, min_agreement, on_parity_fail, card_data, card_examples)

    def heldout_texts(self, n: int = 200) -> list[Any]:
        """Up to `n` validation inputs as text (decoded from their token ids), for parity checks."""
        from .publish import heldout_texts

        return heldout_texts(self, n)

    def model_card(self, card_data: dict[str, Any] | None = None, examples: bool = False) -> str:
        """The model card (`README.md` of a save): Hub YAML metadata, the training record and how to use it; its
        snippets show a validation input with `examples=True`, else placeholders."""
        from .publish import model_card

        return model_card(self, card_data, examples)

    def _update_config(self) -> None:
        """Write the labels (and task entries) into `model.config` before saving or predicting."""
        if self.classes:
            cfg = self.model.config
            cfg.id2label = dict(enumerate(self.classes))
            cfg.label2id = {c: i for i, c in enumerate(self.classes)}


def _listed(callbacks: Any) -> list[Any]:
    """Callbacks given as fastai takes them (one, a list, an `L`, a generator or None), as a list."""
    from fastcore.foundation import L

    return list(L(callbacks))


AdaptiveTuner = Tuner  # AdaptNLP's name for the task-agnostic tuner
