"""LoRA and other peft adapters: wrap a task's model, save the adapter folder, load one, merge it.

An adapter folder is what `tuner.save()` writes for a tuner built with `peft=`: peft's `adapter_config.json`
and `adapter_model.safetensors`, the base model's `config.json` (labels included), the tokenizer, and the same
`adapt.json` manifest (with checksums) as a full model. `adapter_config.json` names the base by the name the card
records (its Hub id, or the name given as `base_model_name=`), never by a path of the machine that trained it.
Loading one needs peft and that base: found by its name (the Hub or its local cache), or given where the folder is
loaded (`adapter_base=` of the Easy modules and tuners, `--adapter-base` of the CLI, `ADAPT_ADAPTER_BASE` for the
server). A merged save (`save(merged=True)`, `export()`) is a plain transformers folder.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .modelio import ADAPTER_CONFIG
from .errors import (
    InvalidChoiceError,
    InvalidInputError,
    MissingDependencyError,
    install_hint,
    unknown_name,
)

PEFT_KINDS = ("lora",)

# adapt's task -> peft's TaskType. Others get a generic PeftModel, which passes every input through: peft has no
# masked-LM type, and its QUESTION_ANS model drops `token_type_ids` (peft 0.21), so BERT would train on other inputs
# than it is served with.
TASK_TYPES = {
    "sequence_classification": "SEQ_CLS",
    "token_classification": "TOKEN_CLS",
    "language_modeling": "CAUSAL_LM",
    "summarization": "SEQ_2_SEQ_LM",
    "translation": "SEQ_2_SEQ_LM",
}
# heads that stay fully trainable next to the adapter where peft's task type does not already keep them (a masked-LM
# head is left as pretrained: its decoder is tied to the embeddings, and a trainable copy would be vocabulary-sized)
HEADS_TO_SAVE = {"question_answering": ["qa_outputs"]}
# the heads peft's own task types keep trainable and save (peft 0.21 `PeftModelFor{Sequence,Token}Classification`):
# a module inside one of them must not be listed again, or the adapter saves a nesting peft cannot load back
# (RoBERTa's `classifier.dense` + `classifier.out_proj` inside `classifier`)
PEFT_SAVES = {"SEQ_CLS": ("classifier", "score"), "TOKEN_CLS": ("classifier", "score")}


def _peft() -> Any:
    try:
        import peft
    except ImportError as e:
        raise MissingDependencyError(
            f"LoRA adapters need peft: {install_hint('peft')} (a merged save, `save(merged=True)`, loads without it)."
        ) from e
    return peft


def is_adapter(model: Any) -> bool:
    """True for a peft model (an adapter around a base model)."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def check_kind(kind: Any) -> None:
    """Refuse a `peft=` name adapt does not know (before anything loads), naming the closest one."""
    if not isinstance(kind, str) or kind.lower() not in PEFT_KINDS:
        hint = " Or pass a peft config: peft.LoraConfig(...)."
        raise InvalidChoiceError(unknown_name("peft kind", str(kind), PEFT_KINDS) + hint)


# attention projections by their module names, for architectures peft has no LoRA default for (distilbert's
# q_lin, mpnet's q, marian's q_proj, ...): every set the model has is used
ATTENTION_NAMES = (("query", "value"), ("q_proj", "v_proj"), ("q_lin", "v_lin"), ("q", "v"), ("c_attn",),
                   ("query_key_value",), ("Wqkv",))


def lora_config(kind: Any, task: str, model: Any, new_weights: Sequence[str] = ()) -> Any:
    """`peft=` as a peft config: `"lora"` as r=8, alpha=16, dropout 0.1 on the attention query/value projections
    (peft's default target modules for the architecture, or found by name). The task head stays trainable, and so
    is every module whose weights the checkpoint lacked (`new_weights`, e.g. the pooler of an encoder saved without
    one): frozen they would stay random, and differently random each time the base loads. A config given is
    copied with the same completions: the task's type when it has none, and those modules to save."""
    peft = _peft()
    config = copy.deepcopy(kind) if isinstance(kind, peft.PeftConfig) else None
    if config is not None and getattr(config, "task_type", None) is None:
        config.task_type = TASK_TYPES.get(task)
    task_type = getattr(config, "task_type", None) if config is not None else TASK_TYPES.get(task)
    own = _peft_saves(str(getattr(task_type, "value", task_type)), model)
    heads = _loadable(_heads_to_save(task, model, new_weights), own)
    if config is not None:
        listed = [*(config.modules_to_save or ()), *heads] if hasattr(config, "modules_to_save") else []
        if listed:
            config.modules_to_save = _loadable(listed, own)
        return config
    check_kind(kind)
    return peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, task_type=TASK_TYPES.get(task),
                           target_modules=_attention_targets(model), modules_to_save=heads or None)


def _heads_to_save(task: str, model: Any, new_weights: Sequence[str]) -> list[str]:
    """The task's head and the modules the checkpoint lacked (their outermost modules)."""
    heads = [name for name in HEADS_TO_SAVE.get(task, []) if hasattr(model, name)]
    own = {name for name, _ in model.named_modules()}  # a name the loader reports must be a module of this model
    new = {key.rsplit(".", 1)[0] for key in new_weights if "." in key} & own
    return heads + _outermost(new - set(heads))


def _peft_saves(task_type: str, model: Any) -> tuple[str, ...]:
    return tuple(name for name in PEFT_SAVES.get(task_type, ()) if hasattr(model, name))


def _loadable(modules: Sequence[str], own: Sequence[str]) -> list[str]:
    """`modules` less those inside another one or inside what peft's task type saves itself (`own`): a nesting
    that peft saves but cannot load back."""
    outer = _outermost(set(modules))
    return [m for m in outer if not any(m == o or m.startswith(f"{o}.") for o in own)]


def _attention_targets(model: Any) -> list[str] | None:
    """None where peft knows the architecture; else the attention projections by name, or a specific error."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in KNOWN:
        return None
    linear = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
              if type(module).__name__ in ("Linear", "Conv1D")}
    # every set present: an encoder-decoder may name its encoder's and decoder's projections differently (LED)
    found = sorted({name for names in ATTENTION_NAMES if linear.issuperset(names) for name in names})
    if not found:
        raise InvalidInputError(
            f"peft='lora' has no default target modules for model type {model_type!r} and found no attention "
            f"projections by name; pass peft=peft.LoraConfig(target_modules=[...]) with some of its linear layers: "
            f"{sorted(linear)[:12]}."
        )
    return found


def _outermost(modules: set[str]) -> list[str]:
    """The modules not inside another one of them (a trainable copy of `cls.predictions` holds its `transform`)."""
    return sorted(m for m in modules if not any(m.startswith(f"{other}.") for other in modules))


def wrap(model: Any, kind: Any, task: str, new_weights: Sequence[str] = ()) -> Any:
    """`model` with a fresh adapter (a peft model given as the model keeps its own); only the adapter, the task
    head and newly initialized modules train. Records which parameters train, for the layer groups."""
    config = None if is_adapter(model) else lora_config(kind, task, model, new_weights)
    try:
        wrapped = model if config is None else _peft().get_peft_model(model, config)
    except ValueError as e:  # peft's own checks of the config against the model (target modules, task type)
        raise InvalidInputError(f"peft cannot put this adapter on the model: {e}") from e
    wrapped.adapt_trainable = {id(p) for p in wrapped.parameters() if p.requires_grad}
    if not wrapped.adapt_trainable:
        raise InvalidInputError("This peft model has no trainable parameters (loaded for inference?); load it with "
                                "PeftModel.from_pretrained(..., is_trainable=True), or pass peft='lora' for a new one.")
    return wrapped


def trainable_filter(model: Any) -> set[int] | None:
    """The ids of the parameters an adapter model trains (None for a plain model: all of them)."""
    return getattr(model, "adapt_trainable", None)


def counts(model: Any) -> dict[str, int]:
    """Trainable and total parameters of `model` (an adapter model counts its base too)."""
    trainable = trainable_filter(model)
    params = list(model.parameters())
    n_train = sum(p.numel() for p in params if (id(p) in trainable if trainable is not None else p.requires_grad))
    return {"trainable_params": n_train, "total_params": sum(p.numel() for p in params)}


def manifest_entry(model: Any) -> dict[str, Any]:
    """The `adapt.json` block of an adapter: its kind, rank, targets, the modules it saves whole (those the model
    has: peft lists every head name its task type knows, `score` and DistilBERT's `pre_classifier` on a BERT too)
    and parameter counts."""
    config = next(iter(model.peft_config.values()))
    targets = config.target_modules
    base = model.get_base_model()
    return {
        "type": str(getattr(config.peft_type, "value", config.peft_type)),
        "r": getattr(config, "r", None),
        "lora_alpha": getattr(config, "lora_alpha", None),
        "target_modules": sorted(targets) if isinstance(targets, (set, list, tuple)) else targets,
        "modules_to_save": sorted(m for m in set(config.modules_to_save or []) if hasattr(base, m)),
        **counts(model),
    }


def write_base_config(model: Any, folder: Path, base_name: str | None) -> None:
    """The base model's `config.json` beside the adapter: labels, architecture and task, as a full save has.
    (The architecture is the head's class, as `save_pretrained` of the model itself records: the config of a bare
    encoder such as MiniLM still names `BertModel`.) `adapter_config.json` names the base `base_name`: peft writes
    the path the base was loaded from, which on another machine points nowhere and tells this one's layout."""
    base = model.get_base_model()
    base.config.architectures = [type(base).__name__]
    base.config.save_pretrained(folder)
    if base_name:
        path = folder / ADAPTER_CONFIG
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_name
        path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def merged_copy(model: Any) -> Any:
    """A plain transformers model equal to `model` with its adapter merged in (`model` is left as it is)."""
    return copy.deepcopy(model).merge_and_unload()


MERGE_TOLERANCE = 1e-4  # the merged model's outputs may differ from the adapter's by float rounding only


def merge_parity(adapter_model: Any, merged: Any, batches: Any, output_keys: tuple[str, ...]) -> float:
    """The largest difference between the outputs (`output_keys`) of the adapter model and its merged copy on
    `batches` (model input dicts), relative to the outputs' scale; `ParityError` beyond `MERGE_TOLERANCE`."""
    import torch

    from .engine import HFModel
    from .quantize import ParityError

    if not batches:
        raise InvalidInputError("Checking the merged model needs validation batches; the validation set is empty.")
    was_training = adapter_model.training
    adapter_model.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            for xb in batches:
                for ref, got in zip(*(_as_tuple(HFModel(m, output_keys)(xb)) for m in (adapter_model, merged)), strict=True):
                    worst = max(worst, float((ref - got).abs().max() / ref.abs().max().clamp(min=1.0)))
    finally:
        adapter_model.train(was_training)
    if worst > MERGE_TOLERANCE:
        raise ParityError(f"The merged model's outputs differ from the adapter model's by {worst:.2e} (relative), more "
                          f"than {MERGE_TOLERANCE:.0e}: the merge went wrong; save the adapter (merged=False) instead.")
    return worst


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)
