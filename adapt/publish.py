"""What happens to a trained model on its way out: saving the folder, exporting it with its fast copies (each
parity-checked against fp32), its model card, merging a LoRA adapter into its base, and pushing to the Hub.

Under data-parallel training every rank holds the same weights: the main process writes, the others wait for it
(`on_main`, the one rank-0 guard). Reading and writing folders, manifests and checksums is `adapt.modelio`.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import CorruptModelError, InvalidInputError, ModelNotFoundError
from .modelio import MANIFEST_NAME, ModelSource, check_hf_folder, resolve_model_source, save_hf_folder
from .utils import atomic_directory, sha256_file

if TYPE_CHECKING:
    from .tasks.base import TaskSpec
    from .tuner import Tuner

__all__ = ["PushResult", "export_folder", "push_to_hub"]

T = TypeVar("T")


def on_main(action: Callable[[], T], elsewhere: T) -> T:
    """`action()` on the main process, then every rank meets at a barrier; the other ranks return `elsewhere`."""
    from .distributed import barrier, is_main_process

    if not is_main_process():
        barrier()
        return elsewhere
    try:
        return action()
    finally:
        barrier()


# -- a tuner's model ---------------------------------------------------------------------------------------
def write(tuner: Tuner, directory: str | os.PathLike[str], extra_files: dict[str, str] | None,
          extra_writers: dict[str, Any] | None = None, manifest_extra: dict[str, Any] | None = None) -> Path:
    """The tuner's model, tokenizer and manifest (plus extras) written atomically to `directory`."""
    from .adapters import is_adapter, write_base_config

    tuner._update_config()
    manifest = {**tuner.manifest(), **(manifest_extra or {})}
    model = tuner.model
    # peft writes the adapter only: the base's config keeps labels and architecture
    base_config = (lambda tmp: write_base_config(model, tmp, manifest.get("base_model"))) if is_adapter(model) else None
    return save_hf_folder(model, tuner.tokenizer, directory, manifest, extra_files=extra_files,
                          extra_writers=extra_writers, after_model=base_config)


def save(tuner: Tuner, directory: str | os.PathLike[str], card_data: dict[str, Any] | None, merged: bool,
         card_examples: bool) -> Path:
    """`Tuner.save`: the folder with its card; an adapter merged first when `merged`."""
    def run() -> Path:
        if merged and tuner.is_adapter:
            with merging(tuner) as entry:  # the card of the merged model: a plain transformers folder
                card = {"README.md": tuner.model_card(card_data, card_examples)}
                return write(tuner, directory, card, manifest_extra={"merged_adapter": entry})
        return write(tuner, directory, {"README.md": tuner.model_card(card_data, card_examples)})

    return on_main(run, Path(directory))


@contextlib.contextmanager
def merging(tuner: Tuner, n_batches: int = 2) -> Iterator[dict[str, Any]]:
    """While inside, `tuner.model` is the merged copy of its adapter model, checked to give the same outputs on
    `n_batches` validation batches (`adapt.adapters.merge_parity`); yields the manifest's `merged_adapter` entry."""
    from .adapters import manifest_entry, merge_parity, merged_copy

    adapter_model = tuner.model
    entry = manifest_entry(adapter_model)
    merged = merged_copy(adapter_model).eval()
    batches = [b[0] for b in itertools.islice(tuner.dls.valid, n_batches)]
    entry["max_relative_diff"] = merge_parity(adapter_model, merged, batches, tuner.output_keys)
    tuner.model = merged
    try:
        yield entry
    finally:
        tuner.model = adapter_model


def export(tuner: Tuner, path: str | os.PathLike[str], quantize: bool, onnx: bool, parity_texts: Sequence[Any] | None,
           min_agreement: float, on_parity_fail: str, card_data: dict[str, Any] | None, card_examples: bool) -> Path:
    """`Tuner.export`: the merged, carded folder with the fast copies the task allows, each parity-checked."""
    from .fastcopy import build_fast_copies, check_fast_copies

    def run() -> Path:
        check_fast_copies(tuner.spec, quantize, onnx, on_parity_fail)
        texts: list[Any] = []
        if quantize or onnx:  # held-out inputs for the parity checks
            texts = list(parity_texts) if parity_texts is not None else tuner.heldout_texts()  # a task's own inputs
        merged = merging(tuner) if tuner.is_adapter else contextlib.nullcontext(None)
        with merged as entry, tempfile.TemporaryDirectory(prefix="adapt-export-") as tmp:
            copies = build_fast_copies(tuner.predictor(), texts, Path(tmp), quantize, onnx, min_agreement, on_parity_fail)
            card = {"README.md": tuner.model_card(card_data, card_examples)}
            extra = {**copies.manifest, **({"merged_adapter": entry} if entry else {})}
            return write(tuner, path, card, extra_writers=copies.writers, manifest_extra=extra)

    return on_main(run, Path(path))


def push(tuner: Tuner, repo_id: str, private: bool, token: str | None, commit_message: str | None,
         card_data: dict[str, Any] | None) -> Any:
    """`Tuner.push_to_hub`: saved to a temporary folder, then uploaded (`push_to_hub`)."""
    def run() -> Any:
        with tempfile.TemporaryDirectory(prefix="adapt-push-") as tmp:
            folder = Path(tmp) / repo_id.split("/")[-1]
            card = {"README.md": tuner.model_card(card_data)}
            write(tuner, folder, card)
            return push_to_hub(folder, repo_id, private=private, token=token, commit_message=commit_message)

    return on_main(run, None)


def heldout_texts(tuner: Tuner, n: int = 200) -> list[Any]:
    """Up to `n` validation inputs as text (decoded from their token ids), for parity checks and card examples."""
    valid = tuner.dls.valid.dataset
    rows = valid.select(range(min(n, len(valid))))
    texts = [tuner.tokenizer.decode(ids, skip_special_tokens=True) for ids in rows["input_ids"]]
    return [t for t in texts if t.strip()]


def model_card(tuner: Tuner, card_data: dict[str, Any] | None, examples: bool) -> str:
    """The tuner's model card: its manifest (with the mask token, and a validation input with `examples`)."""
    from .card import model_card as card

    mask = getattr(tuner.tokenizer, "mask_token", None)
    shown = {"card_examples": tuner.heldout_texts(1)} if examples else {}
    return card({**tuner.manifest(), **({"mask_token": mask} if mask else {}), **shown}, card_data, tuner.spec)


# -- a saved folder ----------------------------------------------------------------------------------------
def export_folder(
    spec: TaskSpec,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    quantize: bool = False,
    onnx: bool = False,
    parity_texts: Any = None,
    min_agreement: float = 0.99,
    on_parity_fail: str = "raise",
) -> Path:
    """Export a saved folder of `spec`'s task: verify it (checksums included), copy it atomically, add a model card.

    `quantize`/`onnx` add the task's int8/ONNX copies, each checked against fp32 on `parity_texts` (held-out
    inputs; required with either), as `Tuner.export` does. (`adapt export` finds the task with `task_for_folder`.)
    """
    from .card import model_card as card

    src = resolve_model_source(source)
    if src.kind != "hf_dir":
        raise CorruptModelError(f"{str(source)!r} is not a saved transformers folder; export needs one.")
    copies = None
    with tempfile.TemporaryDirectory(prefix="adapt-export-") as work:
        if quantize or onnx:
            copies = _fast_copies(spec, src, parity_texts, Path(work), quantize, onnx, min_agreement, on_parity_fail)
        target = Path(target)
        with atomic_directory(target, protect=src.location) as tmp:
            manifest = _copied(src, tmp, copies)
            if not (tmp / "README.md").exists():
                (tmp / "README.md").write_text(card(manifest, None, spec), encoding="utf-8")
    return target


def _copied(src: ModelSource, tmp: Path, copies: Any) -> dict[str, Any]:
    """Copy the folder's files into `tmp` with the fast copies; returns the manifest, updated with them."""
    for f in Path(src.location).iterdir():
        if f.is_file():
            shutil.copy2(f, tmp / f.name)
    manifest = dict(src.manifest or {"task": "unknown"})
    if copies is None:
        return manifest
    for name, write_copy in copies.writers.items():
        write_copy(tmp / name)
    manifest.update(copies.manifest)
    if src.manifest:  # keep the manifest the truth: every weight file checksummed
        manifest["files"] = {**(manifest.get("files") or {}), **{n: sha256_file(tmp / n) for n in copies.writers}}
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest


def _fast_copies(spec: TaskSpec, src: ModelSource, parity_texts: Any, work: Path, quantize: bool, onnx: bool,
                 min_agreement: float, on_fail: str) -> Any:
    from .fastcopy import build_fast_copies, check_fast_copies
    from .inference import normalize_inputs

    check_fast_copies(spec, quantize, onnx, on_fail)
    if not parity_texts:
        raise InvalidInputError(
            "int8/ONNX copies are checked against fp32 on held-out inputs: pass parity_texts (adapt export --parity-file)."
        )
    texts, _ = normalize_inputs(list(parity_texts), spec.fields)
    predictor = spec.easy(precision="fp32").get_model(src.location)
    return build_fast_copies(predictor, texts, work, quantize, onnx, min_agreement, on_fail)


# -- the Hub -----------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    """Where `push_to_hub` put a folder: the repository, its URL and the commit."""

    repo_id: str
    repo_url: str
    commit_url: str
    commit_oid: str
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "repo_url": self.repo_url, "commit_url": self.commit_url,
                "commit_oid": self.commit_oid, "files": list(self.files)}


def push_to_hub(
    folder: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Upload a folder written by `tuner.save()`/`adapt export` (model card included) to the Hub repo `repo_id`,
    creating the repo if needed (`private` applies to a new repo). The folder is verified first (checksums
    included), so a damaged save is refused before anything is sent. `token` defaults to huggingface_hub's
    (`HF_TOKEN` or `huggingface-cli login`); `endpoint` (or `HF_ENDPOINT`) picks the Hub."""
    path = Path(folder)
    if not path.is_dir():
        raise ModelNotFoundError(f"{str(folder)!r} is not a folder; push a folder written by tuner.save() or adapt export.")
    manifest = check_hf_folder(path, strict=True)
    from .hub import HubUnavailableError, hub_api

    api = hub_api(endpoint, token, "Pushing to the Hub")
    files = sorted(f.name for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    message = commit_message or f"Upload {manifest.get('task', 'model')} model with adapt"
    try:
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        # the repo then holds exactly this save: files of an earlier push (an ONNX copy, say) are deleted
        info = api.upload_folder(folder_path=str(path), repo_id=repo.repo_id, repo_type="model", commit_message=message,
                                 allow_patterns=[glob.escape(f) for f in files], delete_patterns="*")
    except Exception as e:  # huggingface_hub raises HTTP, connection and validation errors of many kinds
        raise HubUnavailableError(f"Pushing {str(folder)!r} to {repo_id!r} at {api.endpoint} failed: {e}") from e
    return PushResult(repo.repo_id, str(repo), str(info.commit_url), str(info.oid), files)



# -- a model trained elsewhere (a user's own fastai Learner) ----------------------------------------------
def name_labels(config: Any, labels: Sequence[Any]) -> None:
    """Write `labels` (the names of the model's outputs, in order) into a transformers config."""
    names = [str(c) for c in labels]
    config.id2label = dict(enumerate(names))
    config.label2id = {c: i for i, c in enumerate(names)}


def save_model(model: Any, tokenizer: Any, directory: str | os.PathLike[str], spec: TaskSpec,
               labels: Sequence[str] | None = None, base_model_name: str | None = None,
               card_data: dict[str, Any] | None = None) -> Path:
    """A transformers `model` (trained by any means) and its `tokenizer` as an adapt folder of `spec`'s task: the
    labels written into its config, `adapt.json` with checksums, and a model card."""
    from .card import model_card as card
    from .errors import NumClassesError
    from .modelio import base_model_id

    config = model.config
    manifest: dict[str, Any] = {"task": spec.saved_task}
    if labels is not None:
        if len(labels) != config.num_labels:
            raise NumClassesError(f"{len(labels)} labels given for a model with {config.num_labels} outputs.")
        manifest["labels"] = [str(c) for c in labels]
        name_labels(config, manifest["labels"])
    base, local = (base_model_name, False) if base_model_name else base_model_id(getattr(config, "_name_or_path", ""))
    manifest.update(base_model=base, base_model_is_local=local)
    text = card(manifest, card_data, spec)
    return on_main(lambda: save_hf_folder(model, tokenizer, directory, manifest, extra_files={"README.md": text}),
                   Path(directory))
