"""The models one server serves, by name, and the one path every protocol's request takes to them.

A server serves one saved folder (named by the folder, or `--name`), an embedding folder, or a base model with
LoRA adapters beside it (`--adapter NAME=FOLDER`, or a folder of adapter folders): the base loads once and each
adapter is a model name of its own. Every route (`/predict`, the Open Inference Protocol's `/v2/...`, Hugging
Face task JSON on `/`, OpenAI's `/v1/embeddings`) calls `ModelSet.predict`, which checks the request's size,
goes through the task's front door (`adapt.inference.prepare`), counts its tokens and micro-batches it with the
other requests for the same model; refusals are `ServeError`s carrying the HTTP status each protocol answers with.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AdaptError, InvalidInputError, closest
from ..inference import prepare
from .batching import MicroBatcher, QueueFullError
from .served import ServeError, Served

if TYPE_CHECKING:
    from ..tasks.base import TaskSpec
    from .app import ServerConfig

__all__ = ["GROUP_KEY", "MODEL_KEY", "ModelSet", "ServeError", "Served", "adapter_folders", "check_sizes", "model_name"]

MODEL_KEY = "_model"  # the batcher parameter holding each request's model, as served when it arrived (the route)
GROUP_KEY = "_group"  # the batcher parameter of a model's batch group: requests of one group share model calls


def model_name(folder: str | Path, given: str | None = None) -> str:
    """The name a folder is served under: `given` (`--name`), else the folder's name."""
    return given or Path(str(folder)).resolve().name or "model"


def adapter_folders(spec: str | None) -> dict[str, str]:
    """`NAME=FOLDER` entries and folders of adapter folders (comma-separated) -> {name: folder}, in order."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in (spec or "").split(",")):
        if not entry:
            continue
        name, sep, folder = entry.partition("=")
        if sep:
            out[_checked_name(name.strip(), entry)] = folder.strip()
            continue
        root = Path(entry)
        if not root.is_dir():
            raise InvalidInputError(f"The adapters entry {entry!r} is neither NAME=FOLDER nor a folder of adapter folders.")
        from ..loading import is_adapter_folder

        # hidden folders are an atomic save's work (`.NAME.tmp-*`, `.NAME.old-*`), not adapters
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_adapter_folder(p)):
            out[_checked_name(sub.name, str(sub))] = str(sub)
    return out


def _checked_name(name: str, entry: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", name):
        raise InvalidInputError(f"{entry!r}: an adapter's name is 1 to 128 letters, digits, '_', '.' or '-', and does not "
                                "start with '.' or '-' (it is a part of URLs).")
    return name


class ModelSet:
    """The served models by name, loaded together and swapped together on reload; one micro-batcher for all."""

    def __init__(self, config: ServerConfig, on_batch: Callable[[str, int], None] | None = None) -> None:
        from ..modelio import resolve_model_source

        self.config = config
        self.adapters = adapter_folders(config.adapters)
        # the folder verified once (checksums included) at start; the first load uses it
        self.source: Any = None if self.adapters else resolve_model_source(config.model_dir)
        self.kind, self.spec = self._kind()
        self.models: dict[str, Served] = {}
        self.reload_lock = asyncio.Lock()
        self._on_batch = on_batch
        self.batcher = MicroBatcher(self.run, config.max_batch_size, config.max_wait_ms,
                                    max_queued_texts=config.max_queued_texts, route_key=MODEL_KEY)

    def _kind(self) -> tuple[str, TaskSpec | None]:
        """("embeddings", None), ("adapters", the adapters' task) or ("task", the folder's task)."""
        from ..tasks import task_for_folder

        if self.adapters:
            from .adapters import adapters_task

            return "adapters", adapters_task(self.adapters)
        from ..sentence_embeddings import is_embedding_folder

        if is_embedding_folder(self.source.location):
            return "embeddings", None
        return "task", task_for_folder(self.source)

    @property
    def loaded(self) -> bool:
        return bool(self.models)

    def names(self) -> list[str]:
        return list(self.models)

    @property
    def default(self) -> str | None:
        """The model a request naming none goes to: the only one (several adapters: none)."""
        return next(iter(self.models)) if len(self.models) == 1 else None

    def get(self, name: str | None) -> Served:
        """The model served as `name` (None: the only one); `ServeError(404)` naming the choices otherwise."""
        if not self.models:
            raise ServeError(503, "The models are not loaded yet; retry shortly.", {"Retry-After": "1"})
        if name is None or name == "":
            if self.default is None:
                raise ServeError(400, f"This server serves several models; name one of {sorted(self.models)}.")
            return self.models[self.default]
        served = self.models.get(name)
        if served is None:
            raise ServeError(404, self._unknown_message(name))
        return served

    def _unknown_message(self, name: str) -> str:
        near = closest(name, list(self.models))
        hint = f" Did you mean {near!r}?" if near else ""
        return f"No model named {name!r} is served here; choose one of {sorted(self.models)}.{hint}"

    # -- loading ----------------------------------------------------------------------------------------
    def load(self) -> dict[str, Served]:
        """Load every model (the base once, adapters beside it); the caller installs them."""
        if self.kind == "adapters":
            from .adapters import load_adapters

            return load_adapters(self.config, self.adapters)
        source, self.source = self.source or self.config.model_dir, None
        name = model_name(self.config.model_dir, self.config.name)
        if self.kind == "embeddings":
            from ..sentence_embeddings import load_embedder

            predictor, manifest = load_embedder(getattr(source, "location", source), device=self.config.device)
            return {name: Served(name, predictor, manifest, str(self.config.model_dir))}
        return {name: self._load_task(source, name)}

    def _load_task(self, source: Any, name: str) -> Served:
        from ..modelio import pickle_allowed, read_manifest

        if self.spec is None:
            raise RuntimeError("an embedding folder has no task model")
        config = self.config
        easy = self.spec.easy(device=config.device, trust_pickle=pickle_allowed(), adapter_base=config.adapter_base)
        predictor = easy.get_model(source)
        manifest = getattr(source, "manifest", None) or read_manifest(config.model_dir)
        return Served(name, predictor, manifest, str(config.model_dir), self.spec)

    def install(self, models: dict[str, Served]) -> None:
        """Serve `models` from the next request on (requests already queued finish on the models they arrived for)."""
        self.models = models

    async def reload(self) -> dict[str, Any]:
        """Load again (checksums verified; a folder of adapters is read again, so adapters come and go) and swap in."""
        async with self.reload_lock:
            if self.kind == "adapters":
                from .adapters import reload_adapters

                self.adapters = adapter_folders(self.config.adapters)
                models = await asyncio.to_thread(reload_adapters, self.models, self.config, self.adapters,
                                                 self.in_flight())
            else:
                models = await asyncio.to_thread(self.load)
            before = set(self.models)
            self.install(models)
        return {"reloaded": True, "task": self.task_name, "models": list(models),
                "added": sorted(set(models) - before), "removed": sorted(before - set(models))}

    @property
    def task_name(self) -> str:
        return self.spec.name if self.spec is not None else "embeddings"

    # -- prediction -------------------------------------------------------------------------------------
    def run(self, texts: list[Any], params: dict[str, Any]) -> Any:
        """One model call of the batcher, for each text's model as served when its request arrived (`MODEL_KEY`): one
        model, or adapters of one batch group, each row with its own adapter."""
        params = dict(params)
        served: list[Served] = params.pop(MODEL_KEY)
        params.pop(GROUP_KEY, None)
        leader = served[0]
        if any(s is not leader for s in served):
            from .adapters import mixed_rows

            with mixed_rows(served):
                result = leader.predictor.predict(texts, batch_size=self.config.max_batch_size, **params)
        else:
            result = leader.predictor.predict(texts, batch_size=self.config.max_batch_size, **params)
        if self._on_batch is not None:
            names = [s.name for s in served]
            for name in dict.fromkeys(names):
                self._on_batch(name, names.count(name))
        return result

    def in_flight(self) -> list[Served]:
        """The models requests queued or running were accepted for (a reload keeps their adapters loaded)."""
        return [served for served, _ in self.batcher.waiting(MODEL_KEY)]

    def queued_texts(self) -> dict[str, int]:
        """Texts waiting, by model name."""
        out: dict[str, int] = {}
        for served, left in self.batcher.waiting(MODEL_KEY):
            out[served.name] = out.get(served.name, 0) + left
        return out

    async def predict(
        self, name: str | None, items: Sequence[Any], detail_level: Any = "low", parameters: dict[str, Any] | None = None
    ) -> tuple[Served, Any, Any]:
        """Run `items` on the model `name`: (the model, its results, the detail level); `ServeError` on refusal."""
        served = self.get(name)
        config = self.config
        refusal = check_sizes(items, config.max_texts, config.max_chars)
        if refusal is not None:
            raise ServeError(413, refusal)
        try:
            call = prepare(served.predictor, list(items), served.fields, detail_level, parameters or {},
                           f"{served.task} prediction")
            tokens = await asyncio.to_thread(served.counter.count, call.inputs)
            if tokens > config.max_tokens:
                raise ServeError(413, f"The texts hold {tokens} tokens, over max_tokens={config.max_tokens}; split the request.")
            compute = call.compute if getattr(served.predictor, "computes_scores", False) else {}
            params = {**call.options, **compute, MODEL_KEY: served, GROUP_KEY: served.batch_group}
            result = await self.batcher.submit(call.inputs, params, timeout=config.request_timeout or None)
        except QueueFullError as e:
            raise ServeError(503, str(e), {"Retry-After": "1"}) from e
        except asyncio.TimeoutError as e:
            raise ServeError(504, f"The request took over request_timeout={config.request_timeout:g} s and was dropped; "
                                  "send fewer or shorter texts.") from e
        except AdaptError as e:
            raise ServeError(422, str(e)) from e
        return served, result, call.level


def check_sizes(items: Sequence[Any], max_texts: int, max_chars: int) -> str | None:
    """Why a request is too large (more than `max_texts` items, an item over `max_chars`), or None."""
    if len(items) > max_texts:
        return f"{len(items)} texts exceed max_texts={max_texts}; split the request."
    for i, item in enumerate(items):
        values = item.values() if isinstance(item, dict) else item if isinstance(item, (tuple, list)) else [item]
        size = sum(len(v) for v in values if isinstance(v, str))
        if size > max_chars:
            return f"texts[{i}] has {size} characters, over max_chars={max_chars}."
    return None
