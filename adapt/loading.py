"""Loading a model for a task: the checks of a source against the task (flair, another task's save, labels), the
model with its head from a Hub id or folder, and a LoRA adapter folder loaded on its base and merged (the training
side of adapters, wrapping and merging, is `adapt.adapters`; the folder format is `adapt.modelio`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adapters import _outermost, _peft
from .errors import AdaptError, CorruptModelError, ModelNotFoundError, UnknownLabelError, WrongTaskError
from .modelio import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    ModelSource,
    check_task_head,
    is_task_head,
    load_hf_config,
    load_tokenizer,
    own_weights,
    pad_alike,
    resolve_model_source,
)

if TYPE_CHECKING:
    from .tasks.base import TaskSpec
    from .tuner import Tuner

__all__ = ["check_source", "load_adapter_model", "load_for_training", "load_hf_model"]


def check_source(spec: TaskSpec, src: ModelSource, who: str, also_loads: Sequence[str] | None = None,
                 name: Any = None) -> None:
    """Refuse a source `who` cannot use for `spec`'s task: a flair model where the task has none (always, to train:
    `also_loads` is given then) and a save of another task (training may start from those of `also_loads`).
    Messages name the source as the user did (`name`), else by its location."""
    shown = name if name is not None else src.location
    if src.kind == "flair" and (also_loads is not None or spec.flair is None or spec.flair_predictor is None):
        what = "fine-tunes transformers models" if also_loads is not None else "needs a transformers model"
        raise WrongTaskError(f"{shown!r} is a flair model; {who} {what}.")
    if not src.manifest:
        return
    saved = src.manifest.get("task")
    if also_loads is not None and saved not in (spec.saved_task, *also_loads):
        raise WrongTaskError(f"{shown!r} holds a {saved!r} model, not a {spec.name!r} model.")
    if also_loads is None and not spec.matches_manifest(src.manifest):
        raise WrongTaskError(wrong_task(src, spec, who))


def wrong_task(src: Any, spec: TaskSpec, who: str) -> str:
    """'... holds a 'masked_language_modeling' model (BertForMaskedLM); EasyTextGenerator needs a 'language_modeling'
    model: use EasyFillMask.fill_mask.' The other task is looked for among those declared so far: nothing is
    imported to find it."""
    from .tasks.base import declared

    other = next((t for t in declared() if t.matches_manifest(src.manifest)), None)
    name = other.name if other is not None else src.manifest.get("task")
    config = json.loads((Path(src.location) / "config.json").read_text(encoding="utf-8"))
    archs = ", ".join(config.get("architectures") or []) if isinstance(config, dict) else ""
    hint = f": use {other.easy.__name__}.{other.verb}" if other is not None else ""
    found = f"{src.location!r} holds a {name!r} model ({archs or 'unknown architecture'})"
    return f"{found}; {who} needs a {spec.name!r} model{hint}."


def load_for_training(
    spec: TaskSpec, model_name: Any, who: str, also_loads: Sequence[str], classes: Sequence[str],
    adapter_base: str | None, from_pretrained: Callable[[str, Any], Any],
) -> tuple[Any, bool]:
    """(the model `model_name` names for training `spec`'s task, True when it came from an adapter folder):
    `from_pretrained(location, config)` loads a Hub id or folder with the task's head; an adapter folder goes on
    training as its merged model. An adapt save of another task, or with other labels, is refused rather than
    silently re-headed."""
    import transformers

    src = resolve_model_source(model_name)
    check_source(spec, src, who, also_loads, model_name)
    labels = (src.manifest or {}).get("labels")
    if labels is not None and classes and list(labels) != list(classes):
        raise UnknownLabelError(f"The saved model's labels {labels} differ from the data's labels {list(classes)}.")
    try:
        config = transformers.AutoConfig.from_pretrained(src.location, trust_remote_code=False)
    except OSError as e:
        raise ModelNotFoundError(f"Could not load {model_name!r} (offline, or not a model): {e}") from e
    except ValueError as e:  # an unknown model type, or a config that needs its own code run
        raise CorruptModelError(f"The config of {model_name!r} cannot be used as it is: {e}") from e
    if is_adapter_folder(src.location):
        auto = getattr(transformers, spec.auto_class)
        return load_adapter_model(src.location, auto, config, adapter_base), True
    try:
        return from_pretrained(src.location, config), False
    except OSError as e:
        raise ModelNotFoundError(f"Could not load {model_name!r} (offline, or not a model): {e}") from e


def reload(tuner: Tuner, path: Any, device: Any = None) -> Tuner:
    """`Tuner.load`: the tuner's weights replaced by those at `path` (and its tokenizer when the folder has one)."""
    from .engine import HFModel
    from .utils import default_device

    if device is not None:
        tuner.device = default_device(device)
        tuner.dls.to(tuner.device)
    src = resolve_model_source(path)
    if src.kind == "hf_dir" and (Path(src.location) / "tokenizer_config.json").exists():
        tuner.tokenizer = tuner.datasets._ready(load_tokenizer(src.location))  # padded, words ready, as in training
    tuner.model = tuner._padded(tuner._load_model(path)).to(tuner.device)
    tuner.learn.model = HFModel(tuner.model, tuner.output_keys)
    tuner.learn.opt = None  # a new optimizer for the new parameters at the next fit
    return tuner


def with_head(spec: TaskSpec, location: str, config: Any, classes: Sequence[str], name: str,
              config_kwargs: dict[str, Any]) -> tuple[Any, list[str]]:
    """(the task's auto class loaded from `location`, the weights it started new): a labelled task gets a head sized
    to `classes` (`config_kwargs` adds entries such as `problem_type`), a new one when the saved head has another size."""
    import transformers

    check_task_head(config, spec.auto_class, spec.name, name)
    auto = getattr(transformers, spec.auto_class)
    kwargs = _head_kwargs(spec, config, classes, name, config_kwargs) if classes else {"config": config}
    try:  # a labelled head reloads the config with the label entries; others load as configured
        model, info = auto.from_pretrained(location, trust_remote_code=False, output_loading_info=True, **kwargs)
    except ValueError as e:
        raise WrongTaskError(f"{location!r} has no {spec.auto_class} head class in transformers: {e}") from e
    return model, sorted({*info.get("missing_keys", ()), *(k for k, *_ in info.get("mismatched_keys", ()))})


def _head_kwargs(spec: TaskSpec, config: Any, classes: Sequence[str], name: str,
                 config_kwargs: dict[str, Any]) -> dict[str, Any]:
    head = getattr(config, "architectures", None) or []
    resize = bool(head) and is_task_head(head[0], spec.auto_class, spec.heads) and config.num_labels != len(classes)
    if resize:  # a fine-tuned head of another size: start a new head rather than fail on shapes
        warnings.warn(f"{name!r} has a {config.num_labels}-class head; starting a new {len(classes)}-class head.",
                      stacklevel=6)
    return {"num_labels": len(classes), "id2label": dict(enumerate(classes)),
            "label2id": {c: i for i, c in enumerate(classes)}, "ignore_mismatched_sizes": resize, **config_kwargs}


def load_hf_model(
    source: ModelSource,
    auto_class_name: str,
    task: str,
    head_suffix: str | tuple[str, ...],
    device: Any,
    adapter_base: str | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for `task` with `transformers.<auto_class_name>`, in eval mode on `device`.

    Refuses folders that hold another task's model or a bare encoder without the task's head (a class of
    `auto_class_name`'s mapping, or one ending in `head_suffix`: see `is_task_head`). A tokenizer without a pad
    token pads with EOS, and the model's config learns that id (decoder-only classifiers find their last token by it).
    An adapter folder loads on `adapter_base` when given, else on the base its config names.
    """
    import transformers

    config = load_hf_config(source, task, head_suffix, auto_class_name)
    auto_cls = getattr(transformers, auto_class_name)
    try:
        if is_adapter_folder(source.location):
            model = load_adapter_model(source.location, auto_cls, config, adapter_base)
        else:
            model = auto_cls.from_pretrained(source.location, config=config, trust_remote_code=False)
    except AdaptError:
        raise
    except Exception as e:  # safetensors, torch and transformers raise many kinds for bad files
        raise CorruptModelError(
            f"Could not load the weights in {source.location!r} ({type(e).__name__}: {e}). The weight file is damaged "
            "or does not fit config.json; re-save the model."
        ) from e
    own_weights(model)
    model.to(device).eval()
    return model, pad_alike(model, load_tokenizer(source.location))


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def base_of(folder: str | Path) -> str:
    """The base model an adapter folder was trained on (`base_model_name_or_path` of its adapter config)."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        base = json.loads(path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptModelError(f"{str(path)!r} is not a readable peft adapter config with a base_model_name_or_path "
                                f"({type(e).__name__}: {e}); re-save the adapter with tuner.save().") from e
    if not isinstance(base, str) or not base:
        raise CorruptModelError(f"{str(path)!r} names no base model; re-save the adapter with tuner.save().")
    return base


def load_adapter_model(folder: str | Path, auto_cls: Any, config: Any, adapter_base: str | None = None) -> Any:
    """The adapter at `folder` on its base model, merged: a plain model for inference (the same numbers).

    The base is `adapter_base` when given (a Hub id or a folder: where the base is on this machine), else the one
    `adapter_config.json` names. Its head, new or resized for these labels, comes from the adapter: transformers'
    "newly initialized, you should probably TRAIN" warning is left out, and a weight the adapter does not restore
    is refused (`_check_restored`)."""
    peft = _peft()
    base = adapter_base or _recorded_base(folder)
    try:
        if adapter_base is None and _manifest_of(folder).get("base_model_is_local") and not Path(base).is_dir():
            raise ModelNotFoundError("the adapter was trained on a local folder of that name, not on a Hub model")
        src = resolve_model_source(base)
        if src.kind == "hub":  # transformers 4.57 fails on an unreachable name with an AttributeError; its config
            from transformers import AutoConfig  # says so plainly (OSError)

            AutoConfig.from_pretrained(src.location)
        with _without_new_weights_warning():  # the head comes from the adapter; checked below
            base_model_obj, info = auto_cls.from_pretrained(src.location, config=config, trust_remote_code=False,
                                                            ignore_mismatched_sizes=True, output_loading_info=True)
    except (ModelNotFoundError, OSError) as e:
        raise ModelNotFoundError(
            f"The adapter in {str(folder)!r} needs its base model {base!r}, which is not available here (offline, not "
            "downloaded, or a local folder known by this name only). Give the base where it is: adapter_base=... "
            "(Easy modules, tuners), --adapter-base (CLI) or ADAPT_ADAPTER_BASE (server); or load a merged save instead: "
            f"tuner.save(dir, merged=True) or adapt export. ({e})"
        ) from e
    # transformers lists mismatched keys as names (or as (name, shapes) in some versions)
    resized = [key if isinstance(key, str) else key[0] for key in info.get("mismatched_keys", [])]
    _check_restored(folder, resized, list(info.get("missing_keys", [])))
    fixed = _nesting_removed(folder)
    kwargs = {"config": fixed} if fixed is not None else {}
    return peft.PeftModel.from_pretrained(base_model_obj, str(folder), is_trainable=False, **kwargs).merge_and_unload()


def _manifest_of(folder: str | Path) -> dict[str, Any]:
    """The adapter's `adapt.json` base entries: `base_model` and `base_model_is_local` (empty when not recorded)."""
    try:
        manifest = json.loads((Path(folder) / "adapt.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: manifest.get(k, (manifest.get("training") or {}).get(k)) for k in ("base_model", "base_model_is_local")}


def _recorded_base(folder: str | Path) -> str:
    """The base its config names; an adapter saved before adapt named bases by name holds a path of the machine
    that trained it, which elsewhere points nowhere: then its Hub id from `adapt.json`, when that is one."""
    base = base_of(folder)
    recorded = _manifest_of(folder)
    if Path(base).is_absolute() and not Path(base).exists() and recorded.get("base_model_is_local") is False:
        return str(recorded["base_model"])
    return base


class _NewWeightsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "newly initialized" not in str(record.msg)


@contextlib.contextmanager
def _without_new_weights_warning() -> Iterator[None]:
    """While inside, transformers' loader does not log its "Some weights ... newly initialized" warning."""
    log, quiet = logging.getLogger("transformers.modeling_utils"), _NewWeightsFilter()
    log.addFilter(quiet)
    try:
        yield
    finally:
        log.removeFilter(quiet)


def _nesting_removed(folder: str | Path) -> Any:
    """The adapter's config without `modules_to_save` entries inside another entry (adapt 0.1.0 listed RoBERTa's
    `classifier.dense` beside the `classifier` peft saves, and peft cannot load that back; the weights file holds
    the head under the outer name), or None when the config loads as it is."""
    config = _peft().PeftConfig.from_pretrained(str(folder))
    listed = set(getattr(config, "modules_to_save", None) or ())
    outer = _outermost(listed)
    if set(outer) == listed:
        return None
    config.modules_to_save = outer
    return config


def _check_restored(folder: str | Path, resized: Sequence[str], missing: Sequence[str]) -> None:
    """The base weights whose shapes differ from this config's (a resized head or vocabulary) and those the base
    lacks (a new head) load random; the adapter must carry its own copy of each, or the model would answer from
    random weights."""
    new = [*resized, *missing]
    if not new:
        return
    from safetensors import safe_open

    path = Path(folder) / ADAPTER_WEIGHTS
    try:
        with safe_open(str(path), "pt") as f:
            names = list(f.keys())
        saved = {key.removeprefix("base_model.model.") for key in names}
    except (OSError, ValueError) as e:
        raise CorruptModelError(f"{str(path)!r} is not a readable adapter weights file ({e}).") from e
    lacking = sorted(k for k in new if not _carried(k, saved))
    if lacking:
        raise CorruptModelError(
            f"The adapter in {str(folder)!r} was trained on a base whose weights {lacking[:5]} it resized or added, but "
            "it does not carry them (not in modules_to_save), so they would load random. Re-train with those modules "
            "in modules_to_save, or save merged: tuner.save(dir, merged=True)."
        )


def _carried(key: str, saved: set[str]) -> bool:
    """Whether the adapter's weights hold `key` (peft saves a head's `classifier.weight` as itself, or as
    `classifier.modules_to_save.<adapter>.weight` in other layouts; a LoRA matrix of a module is not its weight)."""
    module, _, leaf = key.rpartition(".")
    return key in saved or any(s.startswith(f"{module}.modules_to_save.") and s.endswith(f".{leaf}") for s in saved)
