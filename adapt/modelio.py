"""Saving and loading model folders: the `adapt.json` manifest, atomic saves and explicit path checks.

Nothing here imports fastai or flair; torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorruptModelError, InvalidInputError, MissingDependencyError, ModelNotFoundError, WrongTaskError, install_hint
from .utils import atomic_directory, library_versions, sha256_file

logger = logging.getLogger(__name__)

MANIFEST_NAME = "adapt.json"
SCHEMA_VERSION = 1
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
FLAIR_SUFFIXES = (".pt", ".pth")

__all__ = [
    "MANIFEST_NAME",
    "ModelSource",
    "check_hf_folder",
    "export_folder",
    "load_flair_model",
    "load_hf_model",
    "model_card",
    "read_manifest",
    "resolve_model_source",
    "save_hf_folder",
]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: `kind` is 'hf_dir', 'flair' or 'hub'."""

    kind: str
    location: str
    manifest: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else that does not exist locally is a missing path."""
    parent = os.path.dirname(name)
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(FLAIR_SUFFIXES)
        or name.count("/") > 1
        or "\\" in name
        or (bool(parent) and Path(parent).is_dir())
    )


def resolve_model_source(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """Decide explicitly (no try/except) whether this names an HF folder, a flair `.pt` file or a hub id."""
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelNotFoundError(f"model_name_or_path must be a non-empty path or hub name, got {name_or_path!r}.")
    name = str(name_or_path)
    p = Path(name).expanduser()
    if p.is_file():
        if p.suffix in FLAIR_SUFFIXES:
            return ModelSource("flair", str(p.resolve()))
        raise CorruptModelError(f"{name!r} is a file; expected a model folder (with config.json) or a flair .pt file.")
    if p.is_dir():
        if (p / "config.json").is_file():
            check_hf_folder(p)
            return ModelSource("hf_dir", str(p.resolve()), read_manifest(p))
        flair_files = sorted(f.name for f in p.iterdir() if f.suffix in FLAIR_SUFFIXES)
        if flair_files:
            pick = "final-model.pt" if "final-model.pt" in flair_files else flair_files[0]
            return ModelSource("flair", str((p / pick).resolve()))
        found = sorted(f.name for f in p.iterdir())[:20]
        raise CorruptModelError(
            f"{name!r} is a folder but holds no model: no config.json and no flair .pt file (found: {found}). "
            "Point to a folder written by tuner.save()/export() or by transformers' save_pretrained()."
        )
    if _looks_like_path(name):
        raise ModelNotFoundError(f"Model path {name!r} does not exist. Check the path, or pass a hub model name.")
    return ModelSource("hub", name)


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read `adapt.json` from a folder; an absent manifest gives `{}` (plain transformers folders are fine)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptModelError(f"{path} is not valid JSON ({e}). Re-save the model.") from e
    if not isinstance(data, dict) or "task" not in data:
        raise CorruptModelError(f"{path} is not an adapt manifest (no 'task' key). Re-save the model.")
    if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
        raise CorruptModelError(
            f"{path} has manifest schema {data['schema_version']}, newer than this adapt understands "
            f"({SCHEMA_VERSION}). Upgrade adapt."
        )
    return data


def check_hf_folder(directory: str | os.PathLike[str]) -> None:
    """Raise `CorruptModelError` unless the folder has a readable config, weights and a tokenizer."""
    d = Path(directory)
    try:
        json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptModelError(f"{d / 'config.json'} is missing or not valid JSON ({e}).") from e
    names = {f.name for f in d.iterdir()}
    missing = []
    if not names.intersection(WEIGHT_FILES):
        missing.append(f"weights (one of {', '.join(WEIGHT_FILES)})")
    if not names.intersection(TOKENIZER_FILES):
        missing.append(f"a tokenizer (one of {', '.join(TOKENIZER_FILES)})")
    if missing:
        raise CorruptModelError(
            f"Model folder {str(d)!r} lacks {' and '.join(missing)}; found {sorted(names)}. "
            "Save with tuner.save(dir) or model.save_pretrained(dir) plus tokenizer.save_pretrained(dir)."
        )
    _verify_checksums(d)


def _verify_checksums(d: Path) -> None:
    files = read_manifest(d).get("files") or {}
    for name, digest in files.items():
        f = d / name
        if not f.is_file():
            raise CorruptModelError(f"{f} is listed in {MANIFEST_NAME} but missing. Re-save or re-export the model.")
        if sha256_file(f) != digest:
            raise CorruptModelError(f"{f} does not match its checksum in {MANIFEST_NAME}: the file is corrupt.")


def save_hf_folder(
    model: Any,
    tokenizer: Any,
    directory: str | os.PathLike[str],
    manifest: dict[str, Any],
    extra_files: dict[str, str] | None = None,
    extra_writers: dict[str, Any] | None = None,
) -> Path:
    """Atomically write model (safetensors), tokenizer, `adapt.json` (with checksums) and extra files.

    `extra_files` maps names to text; `extra_writers` maps names to `fn(path)` for binary files (checksummed).
    """
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        for name, write in (extra_writers or {}).items():
            write(tmp / name)
        weights = [n for n in (*WEIGHT_FILES, *(extra_writers or {})) if (tmp / n).is_file()]
        full = {
            "schema_version": SCHEMA_VERSION,
            **manifest,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": library_versions(),
            "files": {n: sha256_file(tmp / n) for n in weights},
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(full, indent=2, sort_keys=True), encoding="utf-8")
    logger.info("saved model to %s", directory)
    return directory


def _architectures(config: Any) -> list[str]:
    return list(getattr(config, "architectures", None) or [])


def load_hf_model(
    source: ModelSource, auto_class_name: str, task: str, head_suffix: str | tuple[str, ...], device: Any
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for `task` with `transformers.<auto_class_name>`, in eval mode on `device`.

    Refuses folders that hold another task's model or a bare encoder with no `head_suffix` head (one of them,
    for a tuple: GPT-2's causal head is `GPT2LMHeadModel`, most others `...ForCausalLM`).
    """
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    if source.manifest and source.manifest.get("task") != task:
        raise WrongTaskError(f"{source.location!r} holds a {source.manifest.get('task')!r} model; this needs a {task!r} model.")
    try:
        config = AutoConfig.from_pretrained(source.location)
    except OSError as e:
        raise ModelNotFoundError(
            f"Could not load {source.location!r}: it is not a local folder, and the Hugging Face hub could not "
            f"provide it (offline mode is {'on' if os.environ.get('HF_HUB_OFFLINE') == '1' else 'off'}). ({e})"
        ) from e
    archs = _architectures(config)
    if archs and not any(a.endswith(head_suffix) for a in archs):
        heads = " or ".join(head_suffix) if isinstance(head_suffix, tuple) else head_suffix
        raise WrongTaskError(
            f"{source.location!r} holds a {archs[0]}, not a model with a {heads} head. "
            f"Fine-tune it for {task!r} first, or use the Easy module for its task."
        )
    auto_cls = getattr(transformers, auto_class_name)
    try:
        model = auto_cls.from_pretrained(source.location, config=config)
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    except (OSError, ValueError, RuntimeError) as e:
        raise CorruptModelError(f"Could not load the model in {source.location!r}: {e}") from e
    model.to(device).eval()
    return model, tokenizer


def load_flair_model(source: ModelSource, class_name: str) -> Any:
    """Load a flair `.pt` model and check it is a `flair.models.<class_name>`; in eval mode."""
    try:
        import flair.models
        from flair.nn import Model
    except ImportError as e:
        raise MissingDependencyError(f"Loading a flair .pt model needs flair: {install_hint('flair')}.") from e
    try:
        model = Model.load(source.location)
    except Exception as e:  # flair raises many kinds of errors for unreadable files
        raise CorruptModelError(f"Could not load flair model {source.location!r}: {e}") from e
    if not isinstance(model, getattr(flair.models, class_name)):
        raise WrongTaskError(f"{source.location!r} holds a flair {type(model).__name__}, not a {class_name}.")
    model.eval()
    return model


def model_card(manifest: dict[str, Any], metrics: dict[str, float] | None = None) -> str:
    """A short Markdown model card from a manifest (and final metrics, when known)."""
    skip = ("task", "base_model", "files", "versions", "created", "schema_version")
    lines = [
        f"# adapt {manifest.get('task')} model",
        "",
        f"- base model: `{manifest.get('base_model')}`",
        *(f"- {k}: `{v}`" for k, v in manifest.items() if k not in skip),
        "",
        "## Final validation metrics",
        "",
        *(f"- {k}: {v:.4f}" for k, v in (metrics or {}).items() if k != "epoch"),
        *([] if metrics else ["- not recorded"]),
        "",
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in (manifest.get("versions") or library_versions()).items()),
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer  # or adapt's Easy* classes, or `adapt serve .`",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_folder(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    quantize: bool = False,
    onnx: bool = False,
    parity_texts: Any = None,
    min_agreement: float = 0.99,
    on_parity_fail: str = "raise",
) -> Path:
    """Export an already saved folder: verify it (checksums included), copy it atomically, add a model card.

    `quantize`/`onnx` add the task's int8/ONNX copies, each checked against fp32 on `parity_texts` (held-out
    inputs; required with either), as `Tuner.export` does.
    """
    import shutil
    import tempfile

    src = resolve_model_source(source)
    if src.kind != "hf_dir":
        raise CorruptModelError(f"{str(source)!r} is not a saved transformers folder; export needs one.")
    copies = None
    with tempfile.TemporaryDirectory(prefix="adapt-export-") as work:
        if quantize or onnx:
            copies = _fast_copies(src, parity_texts, Path(work), quantize, onnx, min_agreement, on_parity_fail)
        target = Path(target)
        with atomic_directory(target, protect=src.location) as tmp:
            for f in Path(src.location).iterdir():
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
            manifest = dict(src.manifest or {"task": "unknown"})
            if copies is not None:
                for name, write in copies.writers.items():
                    write(tmp / name)
                manifest.update(copies.manifest)
                if src.manifest:  # keep the manifest the truth: every weight file checksummed
                    files = dict(manifest.get("files") or {})
                    files.update({n: sha256_file(tmp / n) for n in copies.writers})
                    manifest["files"] = files
                    (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
            if not (tmp / "README.md").exists():
                (tmp / "README.md").write_text(model_card(manifest), encoding="utf-8")
    return target


def _fast_copies(
    src: ModelSource, parity_texts: Any, work: Path, quantize: bool, onnx: bool, min_agreement: float, on_fail: str
) -> Any:
    from .fastcopy import build_fast_copies, check_fast_copies
    from .inference import normalize_inputs
    from .tasks import task_for_folder

    spec = task_for_folder(src.location)
    check_fast_copies(spec, quantize, onnx, on_fail)
    if not parity_texts:
        raise InvalidInputError(
            "int8/ONNX copies are checked against fp32 on held-out inputs: pass parity_texts (adapt export --parity-file)."
        )
    texts, _ = normalize_inputs(list(parity_texts), spec.fields)
    predictor = spec.easy(precision="fp32").get_model(src.location)
    return build_fast_copies(predictor, texts, work, quantize, onnx, min_agreement, on_fail)
