"""The fastai side of adapt: dataloaders that hold a tokenizer, the HF model wrapper, layer groups, LR choice.

Imported only by training code; inference never imports this module.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.imports import noop
from fastcore.imports import in_notebook
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "AdaptiveDataLoaders",
    "HFBatchCollate",
    "HFCallback",
    "HFLoss",
    "HFModel",
    "LRSuggestion",
    "LengthGroupedDataLoader",
    "ValidationScorer",
    "WrapsModel",
    "hf_layer_groups",
    "suggest_fine_tune_lr",
]


class HFBatchCollate:
    """Collate rows with a transformers collator, then split into fastai's `(inputs, *targets)` tuple."""

    def __init__(self, collate_fn: Callable[[list[dict[str, Any]]], Any], label_keys: Sequence[str]) -> None:
        self.collate_fn, self.label_keys = collate_fn, list(label_keys)

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
        out = dict(self.collate_fn(rows))
        # transformers collators rename `label` to `labels`
        ys = tuple(out.pop(k) for k in self.label_keys if k in out)
        return (out, *ys)


class LengthGroupedDataLoader(DataLoader):
    """A fastai `DataLoader` whose (shuffled) order is sorted by length within mega-batches of `bs * mega_batch_mult`.

    Batches then hold texts of similar length, so per-batch padding wastes little on mixed-length data, while
    the mega-batches keep the order random (the idea of `transformers.Trainer`'s `group_by_length`).
    """

    def __init__(self, dataset: Any = None, lengths: Sequence[int] | None = None, mega_batch_mult: int = 50, **kwargs: Any):
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.mega_batch_mult = mega_batch_mult
        super().__init__(dataset, **kwargs)

    def get_idxs(self) -> list[int]:
        idxs = list(super().get_idxs())
        if self.lengths is None:
            return idxs
        mega, bs = self.bs * self.mega_batch_mult, self.bs
        key = self.lengths.__getitem__
        ordered = [i for s in range(0, len(idxs), mega) for i in sorted(idxs[s : s + mega], key=key, reverse=True)]
        batches = [ordered[s : s + bs] for s in range(0, len(ordered), bs)]
        full, rest = (batches[:-1], batches[-1:]) if len(batches[-1]) < bs else (batches, [])
        if self.shuffle:  # the batch order stays random even when one mega-batch holds the whole epoch
            self.rng.shuffle(full)
        return [i for b in full + rest for i in b]

    def new(self, dataset: Any = None, cls: Any = None, **kwargs: Any) -> Any:
        res = super().new(dataset, cls, **kwargs)
        if dataset is None and isinstance(res, LengthGroupedDataLoader):
            res.lengths, res.mega_batch_mult = self.lengths, self.mega_batch_mult
        return res


class AdaptiveDataLoaders(DataLoaders):
    """A fastai `DataLoaders` that keeps the tokenizer and label vocabulary, and shows decoded batches."""

    n_inp = 1

    def __init__(
        self,
        *loaders: DataLoader,
        path: str = ".",
        device: Any = None,
        tokenizer: Any = None,
        vocab: Sequence[str] | None = None,
        label_keys: Sequence[str] = ("labels",),
        multi_label: bool = False,
        task_datasets: Any = None,
    ) -> None:
        super().__init__(*loaders, path=path, device=device)
        self.tokenizer = tokenizer
        self.vocab = list(vocab) if vocab is not None else None
        self.label_keys = list(label_keys)
        self.multi_label = multi_label
        self.task_datasets = task_datasets

    @classmethod
    def from_task_datasets(
        cls,
        dsets: Any,
        batch_size: int = 8,
        shuffle_train: bool = True,
        collate_fn: Callable[..., Any] | None = None,
        device: Any = None,
        num_workers: int = 0,
        group_by_length: bool = False,
        **kwargs: Any,
    ) -> AdaptiveDataLoaders:
        """Dataloaders over the model columns of `dsets.train`/`dsets.valid`, padded per batch.

        `group_by_length=True` batches training texts of similar length together (in a random order): much less
        padding when lengths are mixed, nothing gained when most texts fill `max_length`.
        """
        from .utils import default_device, token_lengths

        collate = HFBatchCollate(collate_fn or dsets.default_collate(), dsets.label_keys)
        splits = [dsets.split(0)] + ([dsets.split(1)] if dsets.valid is not None else [])
        loaders = []
        for i, d in enumerate(splits):
            cols = d.select_columns(dsets.model_columns(d))
            grouped = {"lengths": token_lengths(cols)} if group_by_length and i == 0 else {}
            loaders.append(
                (LengthGroupedDataLoader if grouped else DataLoader)(
                    cols,
                    bs=batch_size,
                    shuffle=shuffle_train and i == 0,
                    drop_last=False,
                    num_workers=num_workers,
                    create_batch=collate,
                    **grouped,
                    **kwargs,
                )
            )
        return cls(
            *loaders,
            device=default_device(device),
            tokenizer=dsets.tokenizer,
            vocab=dsets.vocab,
            label_keys=dsets.label_keys,
            multi_label=getattr(dsets, "multi_label", False),
            task_datasets=dsets,
        )

    def batch_table(self, ds_idx: int = 0, n: int = 5, raw: bool = False, seed: int | None = None) -> Any:
        """`n` random items of split `ds_idx` as a DataFrame, as the task shows them (ids and lengths if `raw`)."""
        import pandas as pd

        dset = self.loaders[ds_idx].dataset
        pick = np.random.default_rng(seed).choice(len(dset), size=min(n, len(dset)), replace=False)
        rows = self.task_datasets.rows(ds_idx, sorted(pick.tolist()))
        return pd.DataFrame.from_records([self.task_datasets.row_view(row, raw) for row in rows])

    def show_batch(self, ds_idx: int = 0, n: int = 5, raw: bool = False, seed: int | None = None) -> None:
        """Show decoded text and label names (`raw=True`: token ids and lengths): HTML in notebooks, a table in a terminal."""
        df = self.batch_table(ds_idx=ds_idx, n=n, raw=raw, seed=seed)
        if not _in_ipython() and "text" in df:
            width = max(40, shutil.get_terminal_size((120, 20)).columns - 30)
            df = df.assign(text=[textwrap.shorten(t, width=width, placeholder=" ...") for t in df["text"]])
        display_table(df)


def _in_ipython() -> bool:
    return "IPython" in sys.modules and getattr(sys.modules["IPython"], "get_ipython", lambda: None)() is not None


def display_table(df: Any) -> None:
    """A DataFrame as HTML in a notebook (or IPython), else as text on stdout."""
    if _in_ipython():
        from IPython.display import display

        display(df)
        return
    sys.stdout.write(df.to_string(index=False) + "\n")


class HFModel(nn.Module):
    """Wrap a transformers model so fastai can call it with one dict of inputs and get logits back.

    `output_keys` names the outputs to return: one tensor for one key (`logits`), else a tuple in that order
    (a QA model's `start_logits`, `end_logits`).
    """

    def __init__(self, hf_model: nn.Module, output_keys: Sequence[str] = ("logits",)) -> None:
        super().__init__()
        self.hf_model = hf_model
        self.output_keys = tuple(output_keys)

    def forward(self, x: dict[str, torch.Tensor]) -> Any:
        out = self.hf_model(**x)
        self.loss = getattr(out, "loss", None)  # the model's own loss, when given its labels
        if len(self.output_keys) == 1:
            return getattr(out, self.output_keys[0])
        return tuple(getattr(out, k) for k in self.output_keys)


class HFLoss:
    """`loss_func=HFLoss()`: train on the transformers model's own loss (the batch's labels are passed to the model
    by `HFCallback`). Any other fastai or PyTorch loss replaces it, called on the outputs and the labels.

    With `reduction="none"` (what fastai sets for `get_preds(with_loss=True)` and `Interpretation`) it gives each
    item's loss, computed from the outputs as the model computes its own: cross-entropy over classes, tags (-100
    ignored) or answer starts and ends, BCE for multi-hot targets, MSE for one output, next-token cross-entropy
    for a causal LM (`causal`, which `HFCallback` sets)."""

    value: Any = None
    reduction: str = "mean"
    causal: bool = False

    def __call__(self, pred: Any, *targets: Any) -> Any:
        if self.reduction == "none":
            return per_item_loss(pred, targets, self.causal)
        if self.value is None:
            from .errors import InvalidInputError

            raise InvalidInputError("HFLoss needs HFCallback in the Learner's callbacks (it hands over the model's loss): "
                                    "Learner(dls, model, loss_func=HFLoss(), cbs=[HFCallback()]).")
        return self.value


def per_item_loss(pred: Any, targets: Sequence[Any], causal: bool = False) -> torch.Tensor:
    """Each item's loss, for outputs `pred` (a tensor, or a tuple such as QA's start and end logits) and `targets`."""
    import torch.nn.functional as F

    if isinstance(pred, (tuple, list)):
        return sum(per_item_loss(p, (t,)) for p, t in zip(pred, targets, strict=True))  # type: ignore[return-value]
    pred, targ = pred.float(), targets[0]
    if targ.is_floating_point():
        if pred.shape[-1] == 1 and targ.dim() == 1:  # regression
            return F.mse_loss(pred.view(-1), targ, reduction="none")
        return F.binary_cross_entropy_with_logits(pred, targ, reduction="none").mean(-1)
    if causal:
        pred, targ = pred[:, :-1], targ[:, 1:]
    if targ.dim() == 1:
        return F.cross_entropy(pred, targ, reduction="none", ignore_index=IGNORE_INDEX)
    losses = F.cross_entropy(pred.transpose(1, -1), targ, reduction="none", ignore_index=IGNORE_INDEX)
    return losses.sum(-1) / (targ != IGNORE_INDEX).sum(-1).clamp(min=1)


IGNORE_INDEX = -100


class WrapsModel(Callback):
    """A callback that keeps `learn.model` wrapped (`wrap(model)`, an `nn.Module` with `hf_model`) from the
    `Learner`'s creation on, also after something unwrapped it, and a data-parallel wrapper around it left as it is;
    `learn.hf_model` is the transformers model."""

    wrapper: ClassVar[type[nn.Module]]

    def wrap(self, model: nn.Module) -> nn.Module:
        return self.wrapper(model)

    def after_create(self) -> None:
        self._wrap()

    def before_fit(self) -> None:
        self._wrap()

    def before_validate(self) -> None:  # get_preds and validate outside a fit
        self._wrap()

    def _wrap(self) -> None:
        inner = getattr(self.learn.model, "module", self.learn.model)  # inside data-parallel training: DDP's module
        if not isinstance(inner, self.wrapper):
            self.learn.model = inner = self.wrap(self.learn.model)
        self.learn.hf_model = inner.hf_model


class HFCallback(WrapsModel):
    """The Hugging Face glue of a fastai `Learner`: `Learner(dls, hf_model, loss_func=..., cbs=[HFCallback()])`.

    It wraps the transformers model in `HFModel` (fastai's dict batches in, the outputs `output_keys` names out:
    `logits`, or a QA model's `start_logits`, `end_logits`), so fastai's losses, metrics and fit policies work on
    it; with `loss_func=HFLoss()` the model computes its own loss from the batch's labels. `learn.hf_model` is the
    transformers model. The Tuner builds its Learner exactly so."""

    order = -10  # before every other callback sees the model
    wrapper = HFModel

    def __init__(self, output_keys: Sequence[str] | None = None) -> None:
        self.output_keys = tuple(output_keys) if output_keys is not None else None

    def wrap(self, model: nn.Module) -> nn.Module:
        """`model` in `HFModel`, returning the outputs `output_keys` names (by default those the dataloaders' task
        declares, else `logits`); a tokenizer the dataloaders carry and the model pad alike (`pad_alike`)."""
        from .modelio import pad_alike

        tokenizer = getattr(self.dls, "tokenizer", None)
        if tokenizer is not None and hasattr(model, "config"):
            pad_alike(model, tokenizer)
        if isinstance(self.learn.loss_func, HFLoss):
            self.learn.loss_func.causal = type(model).__name__.endswith("ForCausalLM")
        keys = self.output_keys or getattr(self.dls, "output_keys", None) or ("logits",)
        return HFModel(model, keys)

    def before_batch(self) -> None:
        if isinstance(self.learn.loss_func, HFLoss) and self.yb:  # the targets by the names the model takes them
            keys = getattr(self.dls, "label_keys", None) or ["labels"]
            self.learn.xb = ({**self.xb[0], **dict(zip(keys, self.yb, strict=False))}, *self.xb[1:])

    def after_pred(self) -> None:
        if isinstance(self.learn.loss_func, HFLoss):
            self.learn.loss_func.value = getattr(self.learn.model, "module", self.learn.model).loss


def _largest_module_list(module: nn.Module) -> nn.ModuleList | None:
    best: nn.ModuleList | None = None
    for m in module.modules():
        if isinstance(m, nn.ModuleList) and len(m) > 1 and (best is None or len(m) > len(best)):
            best = m
    return best


def hf_layer_groups(model: nn.Module, chunks: int = 2) -> list[list[nn.Parameter]]:
    """Parameter groups for discriminative LRs and freezing: embeddings, the encoder's layers in `chunks` groups
    (by default its lower and upper half), head.

    `Learner.freeze()` then trains only the head (classifier, pooler and anything outside the encoder). `model` may be
    wrapped (anything with `hf_model`). Models whose layers cannot be found fall back to a single group.
    """
    hf: Any = getattr(model, "hf_model", model)
    # a peft adapter (`adapt.adapters.wrap` marks what it trains): the groups hold only its adapter and head
    trainable: set[int] | None = getattr(hf, "adapt_trainable", None)
    params = [p for p in model.parameters() if trainable is None or id(p) in trainable]
    hf = hf.get_base_model() if trainable is not None else hf
    base = getattr(hf, getattr(hf, "base_model_prefix", ""), None)
    layers = _largest_module_list(base) if isinstance(base, nn.Module) else None
    if layers is None or not isinstance(base, nn.Module):
        return [params]
    n = max(1, min(int(chunks), len(layers)))
    group_of = {id(p): n - (len(layers) - 1 - i) * n // len(layers) for i, layer in enumerate(layers) for p in layer.parameters()}
    embed = {id(p) for name, p in base.named_parameters() if "embed" in name.split(".")[0] or name.startswith(("wte", "wpe"))}
    groups: list[list[nn.Parameter]] = [[] for _ in range(n + 2)]
    for p in params:
        groups[0 if id(p) in embed else group_of.get(id(p), n + 1)].append(p)
    return [g for g in groups if g]


class LRSuggestion(float):
    """The LR finder's outcome, usable wherever a float learning rate is: it equals `chosen`, the value to train with.

    Also holds the raw `minimum/10` suggestion (`raw`), the LR at the lowest loss and the `reason` for the choice;
    `valley` is `chosen` too, for code written against fastai's `SuggestedLRs`.
    """

    raw: float
    chosen: float
    lr_at_min_loss: float
    reason: str

    def __new__(cls, raw: float, chosen: float, lr_at_min_loss: float, reason: str) -> LRSuggestion:
        obj = super().__new__(cls, chosen)
        obj.raw, obj.chosen, obj.lr_at_min_loss, obj.reason = float(raw), float(chosen), float(lr_at_min_loss), reason
        return obj

    def __getnewargs__(self) -> tuple[float, float, float, str]:  # type: ignore[override]
        return self.raw, self.chosen, self.lr_at_min_loss, self.reason

    @property
    def valley(self) -> float:
        return self.chosen

    __str__ = float.__repr__  # f"{lr}" and logging show the number

    def to_dict(self) -> dict[str, Any]:
        return {"raw": self.raw, "chosen": self.chosen, "lr_at_min_loss": self.lr_at_min_loss, "reason": self.reason}

    def __repr__(self) -> str:
        return f"LRSuggestion(chosen={self.chosen:.3g}, raw={self.raw:.3g}, reason={self.reason!r})"


# the most `lr_find` chooses when every weight of a pretrained body trains, and when only a LoRA adapter (and the
# head) does. Measured with `bench/defaults.py` (MiniLM, 480 rows, 3 epochs, one-cycle): on short binary tweets the
# finder's 4.6e-4 collapsed to the majority class (macro-F1 0.39) where 1e-4 learned (0.86; the HF Trainer's
# defaults 0.86) and 3e-4 lost ground (0.78); adapters train few weights and want higher rates.
FULL_MAX_LR = 1e-4
ADAPTER_MAX_LR = 5e-4


def suggest_fine_tune_lr(
    lrs: Sequence[float], losses: Sequence[float], lo: float = 1e-5, hi: float = FULL_MAX_LR, default: float = 1e-4
) -> LRSuggestion:
    """Pick a fine-tuning learning rate from an LR-finder curve.

    Takes one tenth of the LR at the lowest (smoothed) loss, bounded to `[lo, hi]`, the range in which
    pretrained transformers fine-tune reliably (`hi` is `FULL_MAX_LR`, `ADAPTER_MAX_LR` for a LoRA adapter). A
    curve that never falls clearly (< 2%) gives `default`. fastai's `valley` can suggest ~1e-7 on such models,
    which trains nothing; the minimum itself, on small or imbalanced data, can be high enough to collapse a model
    to one class.
    """
    x, y = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    if len(y) < 5:
        return LRSuggestion(float("nan"), default, float("nan"), "too few finder points; used the default")
    i = int(np.argmin(y))
    raw = float(x[i] / 10)
    drop = (y[0] - y[i]) / max(abs(y[0]), 1e-12)
    if drop < 0.02:
        return LRSuggestion(raw, default, float(x[i]), "loss never fell clearly; used the default")
    chosen = float(min(max(raw, lo), hi))
    reason = "minimum/10" if chosen == raw else f"minimum/10 bounded to [{lo:g}, {hi:g}]"
    return LRSuggestion(raw, chosen, float(x[i]), reason)


class ValidationScorer:
    """One validation-time computation reported as several fastai metrics (e.g. exact match and F1, or ROUGE-1/2/L).

    `collect(learn)` runs after every validation batch and returns what to keep; `score(kept)` turns everything
    kept in an epoch into `{metric name: value}`, computed once. `metrics()` gives the fastai `Metric` objects
    for `names`; the first one resets and collects, the others only read the shared scores.
    """

    def __init__(
        self, collect: Callable[[Any], Any], score: Callable[[list[Any]], dict[str, float]], names: Sequence[str]
    ) -> None:
        self.collect, self.score, self.names = collect, score, list(names)
        self.kept: list[Any] = []
        self._scores: dict[str, float] | None = None

    def reset(self) -> None:
        self.kept, self._scores = [], None

    def scores(self) -> dict[str, float]:
        if self._scores is None:
            self._scores = self.score(self.kept) if self.kept else {n: float("nan") for n in self.names}
        return self._scores

    def metrics(self) -> list[Any]:
        from fastai.metrics import Metric

        scorer = self

        class _View(Metric):
            def __init__(self, key: str, owner: bool) -> None:
                self.key, self.owner = key, owner

            def reset(self) -> None:
                if self.owner:
                    scorer.reset()

            def accumulate(self, learn: Any) -> None:
                if self.owner:
                    scorer.kept.append(scorer.collect(learn))
                    scorer._scores = None

            @property
            def value(self) -> float:
                return float(scorer.scores()[self.key])

            @property
            def name(self) -> str:
                return self.key

        return [_View(n, i == 0) for i, n in enumerate(self.names)]



_BAR_EVENTS = frozenset({"before_epoch", "before_train", "before_validate", "after_train", "after_validate", "after_batch"})


class LineProgressCallback(ProgressCallback):
    """fastai's `ProgressCallback` where a person watches (a terminal or a notebook); elsewhere (a log file, a pipe,
    CI) no bars: the same metrics table, one plain line per epoch, instead of bars redrawn with carriage returns
    into lines thousands of characters long. fastai finds it as `learn.progress`, as its own."""

    @property
    def name(self) -> str:
        return "progress"

    @property
    def lines(self) -> bool:
        """Plain lines, not bars: asked at every event (a `validate` before any fit, stdout redirected mid-way)."""
        return not (in_notebook() or sys.stdout.isatty())

    def before_fit(self) -> None:
        if not self.lines:
            super().before_fit()
        elif self.learn.logger is noop:
            self.old_logger = noop
        else:
            self.old_logger, self.learn.logger = self.learn.logger, self._line
            self._line(self.recorder.metric_names)

    def _line(self, log: Any) -> None:
        cells = [f"{v:.6f}" if isinstance(v, float) else str(v) for v in log]
        sys.stdout.write("  ".join(f"{c:<10}" for c in cells).rstrip() + "\n")

    def __call__(self, event_name: str) -> Any:
        if event_name in _BAR_EVENTS and self.lines:  # the bars' events: nothing to draw
            return None
        return super().__call__(event_name)


@contextlib.contextmanager
def without_progress(learn: Any, when: bool = True) -> Iterator[Any]:
    """While inside, `learn` shows no progress (when `when`); after, the same progress callback is back (fastai's
    `no_bar` puts back a new plain `ProgressCallback`, which would bring bars back into a log file)."""
    progress = getattr(learn, "progress", None) if when else None
    if progress is not None:
        learn.remove_cb(progress)
    try:
        yield learn
    finally:
        if progress is not None:
            learn.add_cb(progress)
