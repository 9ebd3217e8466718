"""Model cards in the Hugging Face Hub's format: YAML metadata that the Hub and `huggingface_hub.ModelCard` read
(`library_name`, `pipeline_tag`, `base_model`, `tags`, `metrics`, and what `card_data` adds, e.g. `license` or
`datasets`), then the training record of `adapt.json` and a "Use" section with snippets for adapt, plain
transformers and the server.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tasks.base import TaskSpec

__all__ = ["card_metadata", "model_card"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_NOT_METRICS = ("epoch", "train_loss", "valid_loss", "best")
# a placeholder input per Easy verb, for the "Use" snippets of a card saved without `card_examples`: neutral, so a
# card never shows an example from another domain than the model's
_EXAMPLES = {
    "generate": "Your prompt",
    "fill_mask": "Paris is the {mask} of France.",
    "summarize": "Your document here.",
    "translate": "Your sentence here.",
}
_PLACEHOLDER = "Your text here."
_QA_PLACEHOLDER = ("Your question?", "The passage that holds the answer.")
_EXAMPLE_WORDS = 30  # a validation input shown in a card is cut to its first words




def _final_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """The metrics of the saved weights: the best epoch's when `keep_best` restored it, else the last epoch's."""
    history = (manifest.get("training") or {}).get("history") or []
    return dict(next((row for row in history if row.get("best")), history[-1] if history else {}))


def _metrics_heading(manifest: dict[str, Any]) -> str:
    training = manifest.get("training") or {}
    best, run = training.get("best_epoch"), training.get("epochs_run")
    if best is None:
        return "## Final validation metrics"
    return f"## Validation metrics of the saved weights (epoch {best + 1} of {run}, the best kept by keep_best)"


def card_metadata(manifest: dict[str, Any], card_data: dict[str, Any] | None = None,
                  spec: TaskSpec | None = None) -> dict[str, Any]:
    """The card's YAML metadata; `card_data` entries are added last (and win)."""
    task = spec.name if spec is not None else str(manifest.get("task"))
    meta: dict[str, Any] = {"library_name": "transformers", "tags": ["adapt", "fastai", task.replace("_", "-")]}
    if manifest.get("adapter"):  # the Hub lists adapter repos under peft, beside their base model
        meta = {"library_name": "peft", "tags": [*meta["tags"], "peft", "lora"]}
    if spec is not None and spec.pipeline_tag:
        meta["pipeline_tag"] = spec.pipeline_tag
    base, training = manifest.get("base_model"), manifest.get("training") or {}
    local = training.get("base_model_is_local", "/" not in str(base))  # unknown: only org/name is surely a hub id
    if isinstance(base, str) and _HUB_ID.match(base) and not local:
        meta["base_model"] = base
    metrics = sorted(k for k in _final_metrics(manifest) if k not in _NOT_METRICS)
    if metrics:
        meta["metrics"] = metrics
    return {**meta, **(card_data or {})}


def _record_lines(manifest: dict[str, Any]) -> list[str]:
    training = manifest.get("training") or {}
    if not training:
        return ["Not recorded: this folder was not saved right after `tuner.tune()`.", ""]
    keys = ("base_model", "epochs", "epochs_run", "best_epoch", "strategy", "lr", "lr_chosen", "lr_reason", "batch_size",
            "max_length", "train_size", "valid_size", "seed", "elapsed_s", "adapt_version")
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | `{json.dumps(training.get(k))}` |" for k in keys if training.get(k) is not None]
    lines += _search_lines(training.get("search"))
    history = training.get("history") or []
    if history:
        cols = list(history[0])
        lines += ["", "Per epoch (validation metrics):", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in history]
    return [*lines, ""]


def _search_lines(search: dict[str, Any] | None) -> list[str]:
    if not search:
        return []
    best = ", ".join(f"{k}={json.dumps(v)}" for k, v in search["best"].items())
    value = search.get("best_value")
    score = f"{value:.4g}" if isinstance(value, (int, float)) else "not finite"
    return ["", f"These settings come from a hyperparameter search (Optuna, {len(search['trials'])} trials here, best "
                f"{search['monitor']} {score}): {best}."]


def _base_line(manifest: dict[str, Any]) -> str:
    base = manifest.get("base_model")
    adapter = _adapter_line(manifest)
    if _base_is_local(manifest):
        return (f"{adapter}Base model: a local model (folder `{base}`), not named when it was tuned "
                "(`Tuner(..., base_model_name=...)` or `adapt tune --base-model-name` records its Hub id).")
    return f"{adapter}Base model: `{base}`."


def _base_is_local(manifest: dict[str, Any]) -> bool:
    """Whether the base was a local folder: the manifest says so (or, in saves from before it did, the record)."""
    return bool(manifest.get("base_model_is_local", (manifest.get("training") or {}).get("base_model_is_local")))


def _adapter_line(manifest: dict[str, Any]) -> str:
    adapter = manifest.get("adapter") or {}
    if not adapter:
        return ""
    kind = "LoRA" if str(adapter.get("type", "")).upper() == "LORA" else str(adapter.get("type"))
    return (f"This folder is a {kind} adapter (peft, rank {adapter.get('r')}), not a whole model: it holds "
            f"{adapter.get('trainable_params', 0):,} trained parameters (the adapter and the task head) and loads on "
            "its base model. ")


def _limitation_lines(manifest: dict[str, Any]) -> list[str]:
    """What `tune()` found wrong with the model it saved (it predicts one class for everything, ...)."""
    warnings = (manifest.get("training") or {}).get("warnings") or []
    return ["## Limitations", "", *(f"- {w}" for w in warnings), ""] if warnings else []


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _use_lines(spec: Any, manifest: dict[str, Any]) -> list[str]:
    if spec is None:
        return ["Load it with `transformers` or serve it with `adapt serve .`.", ""]
    easy, verb = spec.easy.__name__, spec.verb
    adapter = bool(manifest.get("adapter"))
    example = _example(verb, manifest)
    if verb == "predict_qa":
        question, context = example
        call = f"{verb}([{question!r}], [{context!r}], model_name_or_path=model)"
        pipe = f"answer(question={question!r}, context={context!r})"
        body = json.dumps({"texts": [{"question": question, "context": context}]})
    else:
        call, pipe, body = f"{verb}([{example!r}], model)", f"answer({example!r})", json.dumps({"texts": [example]})
    return [
        "With adapt (`pip install adapt-tuner`), from this folder or its Hub id:",
        "",
        "```python",
        f"from adapt import {easy}",
        "",
        'model = "."  # this folder, or its Hub id',
        *(_adapter_easy_lines(easy, manifest) if adapter else []),
        f"print({'easy' if adapter else easy + '()'}.{call})",
        "```",
        "",
        *(_peft_lines(spec, manifest, pipe) if adapter else _pipeline_lines(spec.pipeline_tag, pipe)),
        "As a REST server (`pip install 'adapt-tuner[serve]'`, or the Docker images):",
        "",
        "```",
        "adapt serve . --port 8000",
        f"curl -s localhost:8000/predict -H 'content-type: application/json' -d '{body}'",
        "```",
        "",
    ]


def _example(verb: str, manifest: dict[str, Any]) -> Any:
    """The input the snippets show: the first validation input saved with `card_examples` (cut to its first words),
    else a neutral placeholder; fill-mask always shows its placeholder (the input needs the mask token)."""
    shown = manifest.get("card_examples") or []
    if verb == "predict_qa":
        return tuple(_shortened(x) for x in shown[0]) if shown else _QA_PLACEHOLDER
    if shown and verb != "fill_mask" and isinstance(shown[0], str):
        return _shortened(shown[0])
    return _EXAMPLES.get(verb, _PLACEHOLDER).format(mask=manifest.get("mask_token") or "[MASK]")


def _shortened(text: str) -> str:
    words = str(text).split()
    return " ".join(words[:_EXAMPLE_WORDS]) + (" ..." if len(words) > _EXAMPLE_WORDS else "")


def _base_ref(manifest: dict[str, Any]) -> str:
    """The base model as a snippet names it: its Hub id, or a placeholder path for a local one."""
    base = str(manifest.get("base_model"))
    return f"path/to/{base}" if _base_is_local(manifest) else base


def _adapter_easy_lines(easy: str, manifest: dict[str, Any]) -> list[str]:
    if _base_is_local(manifest):
        return [f"easy = {easy}(adapter_base={_base_ref(manifest)!r})  # where its base model is"]
    return [f"easy = {easy}()  # loads its base, {manifest.get('base_model')}, by name (adapter_base= points elsewhere)"]


def _peft_lines(spec: Any, manifest: dict[str, Any], call: str) -> list[str]:
    """With peft and transformers: the base with this folder's config (labels, head size), the adapter merged in."""
    auto, tag = spec.auto_class, spec.pipeline_tag
    lines = ["With peft and plain transformers:", "", "```python", "from peft import PeftModel",
             f"from transformers import AutoConfig, AutoTokenizer, {auto}" + (", pipeline" if tag else ""), "",
             'config = AutoConfig.from_pretrained(".")  # this adapter\'s labels and head',
             f"base = {auto}.from_pretrained({_base_ref(manifest)!r}, config=config, ignore_mismatched_sizes=True)",
             'model = PeftModel.from_pretrained(base, ".").merge_and_unload()',
             'tokenizer = AutoTokenizer.from_pretrained(".")']
    if tag:
        task = "text2text-generation" if tag == "translation" else tag
        lines += [f'answer = pipeline("{task}", model=model, tokenizer=tokenizer)', f"print({call})"]
    return [*lines, "```", ""]


def _pipeline_lines(tag: str | None, call: str) -> list[str]:
    if tag is None:
        return []
    # transformers picks a translation pipeline by language pair ("translation_en_to_fr"); the generic one is this
    task = "text2text-generation" if tag == "translation" else tag
    return ["With plain transformers:", "", "```python", "from transformers import pipeline", "",
            f'answer = pipeline("{task}", model=".")', f"print({call})", "```", ""]


def _labels_line(manifest: dict[str, Any]) -> str:
    labels = [str(label) for label in manifest.get("labels") or []]
    if manifest.get("regression"):
        return f" A regression model: it predicts one number per input ({', '.join(labels) or 'its value'})."
    return f" Labels: {', '.join(labels)}." if labels else ""


def model_card(manifest: dict[str, Any], card_data: dict[str, Any] | None = None, spec: TaskSpec | None = None) -> str:
    """The model card (`README.md`) of a saved folder of `spec`'s task, from its manifest."""
    from huggingface_hub import ModelCardData

    from .utils import library_versions

    meta = ModelCardData(**card_metadata(manifest, card_data, spec)).to_yaml()
    task = spec.name if spec is not None else manifest.get("task")
    metrics = {k: v for k, v in _final_metrics(manifest).items() if k not in ("epoch", "best")}
    lines = [
        "---", meta, "---", "",
        f"# A `{task}` model, fine-tuned with adapt",
        "",
        _base_line(manifest) + _labels_line(manifest),
        "",
        _metrics_heading(manifest),
        "",
        *([f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in metrics.items()] or ["- not recorded"]),
        "",
        *_limitation_lines(manifest),
        "## Training",
        "",
        *_record_lines(manifest),
        "## Use",
        "",
        *_use_lines(spec, manifest),
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in (manifest.get("versions") or library_versions()).items()),
        "",
    ]
    return "\n".join(lines)
