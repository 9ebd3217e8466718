"""Many LoRA adapters on one base model: the base loads once, each adapter beside it is a model name of its own.

Adapters are checked against the base with their folders (the task in `adapt.json`; the architecture in
`config.json`: model type, hidden size, layers and vocabulary must be the base's); a mismatch is refused at start
and at reload. Each adapter keeps its own labels (its `config.json`), tokenizer and head: a head of another size
than the base's (5 topics beside a yes/no adapter) is loaded as that adapter's own copy. The model thread runs one
call at a time, and each call switches peft's active adapter to its own first, so an adapter's answer is the one
it gives when served alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AdaptError, InvalidInputError

if TYPE_CHECKING:
    from ..tasks.base import TaskSpec
    from .app import ServerConfig
    from .served import Served

__all__ = ["AdapterMismatchError", "AdapterView", "adapters_task", "load_adapters", "mixed_rows", "reload_adapters"]

# config.json entries an adapter must share with its base: what makes the base's weights fit the adapter
ARCHITECTURE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "d_model",
                     "n_embd", "n_layer")


# tasks whose predictors call the model through `inference.forward_logits`, which can give each row its own adapter:
# their adapters share model calls when they answer alike (same labels, thresholds, lengths and tokenizer)
MIXABLE_TASKS = frozenset({"sequence_classification", "token_classification", "question_answering",
                           "masked_language_modeling"})


class AdapterMismatchError(AdaptError, ValueError):
    """An adapter that does not fit the base model it is served on (another task or architecture)."""


def adapters_task(adapters: dict[str, str]) -> TaskSpec:
    """The one task of every adapter folder; `AdapterMismatchError` when they differ or one is not an adapter."""
    from ..loading import is_adapter_folder
    from ..tasks import task_for_folder

    specs: dict[str, TaskSpec] = {}
    for name, folder in adapters.items():
        if not is_adapter_folder(folder):
            raise AdapterMismatchError(f"The adapter {name!r} at {folder!r} is not a LoRA adapter folder (no "
                                       "adapter_config.json); serve a full model folder on its own.")
        specs[name] = task_for_folder(folder)
    tasks = {spec.name for spec in specs.values()}
    if len(tasks) > 1:
        by_task = {spec.name: [n for n, s in specs.items() if s is spec] for spec in specs.values()}
        raise AdapterMismatchError(f"Adapters on one base must share a task; these differ: {by_task}. Serve each task's "
                                   "adapters with a server of their own.")
    return next(iter(specs.values()))


def check_fits(base_config: Any, folder: str, name: str) -> None:
    """Refuse an adapter whose `config.json` differs from the base's architecture."""
    try:
        own = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AdapterMismatchError(f"The adapter {name!r} has no readable config.json ({type(e).__name__}); adapt serves "
                                   "adapters saved with tuner.save(), which writes the base's config and labels.") from e
    base = base_config.to_dict()
    differ = {k: (own[k], base.get(k)) for k in ARCHITECTURE_KEYS if k in own and own[k] != base.get(k)}
    if differ:
        shown = ", ".join(f"{k}: adapter {a!r}, base {b!r}" for k, (a, b) in differ.items())
        raise AdapterMismatchError(f"The adapter {name!r} was not trained on this base model ({shown}). Serve it on "
                                   "the base it names in adapter_config.json.")


class AdapterView:
    """One adapter of a shared peft model, seen as a plain model: its own config, and calls run with it active."""

    def __init__(self, shared: _SharedBase, name: str, config: Any) -> None:
        self._shared, self._name, self.config = shared, name, config

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._shared.model, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._shared.active(self._name):
            return self._shared.model(*args, **kwargs)

    forward = __call__

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with self._shared.active(self._name):
            return self._shared.model.generate(*args, **kwargs)


class _SharedBase:
    """The base model with every adapter loaded into it (peft), and the lock that makes one adapter active per call."""

    def __init__(self, model: Any, base_config: Any) -> None:
        self.model, self.base_config = model, base_config
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def active(self, name: str) -> Iterator[None]:
        """Inside, `name` is peft's active adapter, and no other call runs."""
        with self.lock:
            if self.model.active_adapter != name:
                self.model.set_adapter(name)
            yield

    def add(self, name: str, folder: str) -> None:
        """Load the adapter at `folder` as `name`; a head of its own size replaces the copy peft made of the base's."""
        with self.lock, warnings.catch_warnings():
            if name in self.model.peft_config:  # the first adapter, loaded with the peft model, or already loaded
                return
            # peft warns that it skips a head of another size: `_restore_resized` puts it in place
            warnings.filterwarnings("ignore", message=".*ignore_mismatched_sizes", category=UserWarning)
            self.model.load_adapter(folder, adapter_name=name, is_trainable=False, ignore_mismatched_sizes=True)
            _restore_resized(self.model, folder, name)

    def remove(self, name: str) -> None:
        with self.lock:
            if name in self.model.peft_config:
                others = [n for n in self.model.peft_config if n != name]
                if self.model.active_adapter == name and others:
                    self.model.set_adapter(others[0])
                self.model.delete_adapter(name)


def _restore_resized(model: Any, folder: str, name: str) -> None:
    """Put the adapter's own head weights where their size differs from the base's (peft skipped them)."""
    import torch
    from safetensors.torch import load_file

    from ..modelio import ADAPTER_WEIGHTS

    params = dict(model.named_parameters())
    for key, tensor in load_file(str(Path(folder) / ADAPTER_WEIGHTS)).items():
        module, _, leaf = key.rpartition(".")
        target = f"{module}.modules_to_save.{name}"
        current = params.get(f"{target}.{leaf}")
        if current is not None and current.shape != tensor.shape:
            owner = model.get_submodule(target)
            setattr(owner, leaf, torch.nn.Parameter(tensor.to(current.dtype).to(current.device), requires_grad=False))


def _base_model(config: ServerConfig, spec: TaskSpec, first_name: str, first: str) -> tuple[Any, Any]:
    """(the base, its own config): loaded once with `spec`'s head and the first adapter's labels (the head comes
    from the adapter), after checking that the adapter fits it."""
    import transformers

    from ..loading import _without_new_weights_warning
    from ..modelio import resolve_model_source

    src = resolve_model_source(config.model_dir)
    try:
        base_config = transformers.AutoConfig.from_pretrained(src.location, trust_remote_code=False)
        check_fits(base_config, first, first_name)
        with _without_new_weights_warning():
            model = getattr(transformers, spec.auto_class).from_pretrained(
                src.location, config=transformers.AutoConfig.from_pretrained(first), ignore_mismatched_sizes=True,
                trust_remote_code=False)
    except (OSError, ValueError) as e:
        if isinstance(e, AdaptError):
            raise
        raise AdapterMismatchError(f"The base model {config.model_dir!r} does not load for the adapters' task "
                                   f"{spec.name!r} ({type(e).__name__}: {e}).") from e
    return model, base_config


def load_adapters(config: ServerConfig, adapters: dict[str, str]) -> dict[str, Served]:
    """The base loaded once and every adapter beside it: {name: Served}."""
    if not adapters:
        raise InvalidInputError("No adapters to serve; give --adapter NAME=FOLDER or a folder of adapter folders.")
    return reload_adapters({}, config, adapters)


def reload_adapters(current: dict[str, Served], config: ServerConfig, adapters: dict[str, str],
                    in_flight: Sequence[Served] = ()) -> dict[str, Served]:
    """`adapters` served on the base the `current` ones share (loaded now when there is none): new folders are
    loaded, folders that changed are loaded again; an adapter no model and no request in flight uses is dropped."""
    from ..modelio import resolve_model_source

    spec = adapters_task(adapters)
    shared = _shared_of(current)
    if shared is None or any(s.spec is not spec for s in current.values()):
        shared, current = _new_shared(config, spec, adapters), {}
    fresh = {name: folder for name, folder in adapters.items() if _changed(current.get(name), folder)}
    added: list[str] = []
    try:
        for name, folder in fresh.items():
            resolve_model_source(folder)  # checksums verified, as every load does
            check_fits(shared.base_config, folder, name)
            if _key(name, folder) not in shared.model.peft_config:
                added.append(_key(name, folder))
            shared.add(_key(name, folder), folder)
        served = {name: current[name] for name in adapters if name not in fresh}
        served.update({name: _served(shared, spec, name, folder) for name, folder in fresh.items()})
    except Exception:
        for key in added:  # a refused reload leaves the base as it was
            shared.remove(key)
        raise
    _drop_unused(shared, [*served.values(), *current.values(), *in_flight])
    return {name: served[name] for name in adapters}


def _key(name: str, folder: str) -> str:
    """peft's name of an adapter: its served name made a module name, and the fingerprint of its weights file."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:6]}@{_stamp(folder)}"


def _new_shared(config: ServerConfig, spec: TaskSpec, adapters: dict[str, str]) -> _SharedBase:
    """A peft model on a freshly loaded base (its first adapter's head shape), adapters still to be added."""
    from ..adapters import _peft

    first_name, first = next(iter(adapters.items()))
    base, base_config = _base_model(config, spec, first_name, first)
    model = _peft().PeftModel.from_pretrained(base, first, adapter_name=_key(first_name, first), is_trainable=False)
    model.eval()
    from ..utils import default_device

    model.to(default_device(config.device))
    return _SharedBase(model, base_config)


def _served(shared: _SharedBase, spec: TaskSpec, name: str, folder: str) -> Served:
    import transformers

    from ..modelio import load_tokenizer, pad_alike, read_manifest
    from .served import Served

    view = AdapterView(shared, _key(name, folder), transformers.AutoConfig.from_pretrained(folder))
    manifest = read_manifest(folder)
    tokenizer = pad_alike(view, load_tokenizer(folder))
    predictor = spec.predictor.from_model(view, tokenizer, manifest)
    group = f"{spec.name}:{_answers_alike(predictor)}" if spec.name in MIXABLE_TASKS else name
    return Served(name, predictor, manifest, folder, spec, adapter=True, batch_group=group)


def _answers_alike(predictor: Any) -> str:
    """A fingerprint of how a predictor turns model outputs into answers (labels, thresholds, lengths, tokenizer):
    adapters with equal ones can share a model call, each row with its own adapter."""
    import hashlib

    plain = (str, int, float, bool, list, tuple, dict, type(None))
    settings = {k: v for k, v in sorted(vars(predictor).items()) if k not in ("model", "tokenizer") and isinstance(v, plain)}
    tokenizer = predictor.tokenizer
    settings["tokenizer"] = [type(tokenizer).__name__, len(tokenizer), tokenizer.pad_token_id, tokenizer.padding_side]
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mixed_rows(served: list[Served]) -> Any:
    """Inside, each row of a model call runs with the adapter of its input's model (peft's mixed-adapter batches)."""
    from ..inference import rows_keywords

    names = [s.predictor.model._name for s in served]
    return rows_keywords(lambda rows: {"adapter_names": [names[r] for r in rows]})


def _shared_of(current: dict[str, Served]) -> _SharedBase | None:
    for served in current.values():
        model = getattr(served.predictor, "model", None)
        if isinstance(model, AdapterView):
            return model._shared
    return None


def _changed(served: Served | None, folder: str) -> bool:
    """True for an adapter not served yet, or served from another folder or an older save of it."""
    if served is None or Path(served.folder).resolve() != Path(folder).resolve():
        return True
    model = getattr(served.predictor, "model", None)
    return not isinstance(model, AdapterView) or model._name != _key(served.name, folder)


def _stamp(folder: str) -> str:
    """A short fingerprint of the adapter's weights file (its size and time), so a re-saved adapter loads anew."""
    from ..modelio import ADAPTER_WEIGHTS

    try:
        stat = (Path(folder) / ADAPTER_WEIGHTS).stat()
    except OSError as e:
        raise AdapterMismatchError(f"{folder!r} has no {ADAPTER_WEIGHTS}; adapt serves adapters saved with tuner.save() "
                                   "(peft's safetensors format).") from e
    return f"{stat.st_size:x}{stat.st_mtime_ns:x}"[-12:]


def _drop_unused(shared: _SharedBase, served: list[Served]) -> None:
    """Delete the peft adapters none of `served` uses (removed ones and older saves, one reload after they left)."""
    used = {s.predictor.model._name for s in served if isinstance(getattr(s.predictor, "model", None), AdapterView)}
    for loaded in list(shared.model.peft_config):
        if loaded not in used:
            shared.remove(loaded)
