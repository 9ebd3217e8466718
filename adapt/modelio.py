"""Saving and loading model folders: the `adapt.json` manifest, atomic saves and explicit path checks.

The manifest is the truth about a folder adapt saved: every file it lists must be inside the folder and match
its SHA-256, its labels and problem type must agree with `config.json`, and a malformed manifest, config or
tokenizer is a `CorruptModelError` naming the file. Plain transformers folders (no manifest) load as they are,
unless `strict=True`. Flair `.pt` files are pickles: loading one runs code from the file, so it needs consent
(`trust_pickle=True`, or `ADAPT_TRUST_PICKLE=1`), checked before anything is unpickled.
Nothing here imports fastai or flair; torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import (
    CorruptModelError,
    MissingDependencyError,
    ModelNotFoundError,
    UntrustedPickleError,
    WrongTaskError,
    install_hint,
)
from .utils import atomic_directory, library_versions, sha256_file

logger = logging.getLogger(__name__)

MANIFEST_NAME = "adapt.json"
# a peft adapter folder (adapt.adapters writes one; adapt.loading loads it on its base)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
SCHEMA_VERSION = 1
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ADAPTER_WEIGHTS,  # a peft adapter (adapt.adapters), on the base model its adapter_config.json names
)
# a tokenizer needs one of these (tokenizer_config.json alone is not a tokenizer)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
FLAIR_SUFFIXES = (".pt", ".pth")
ADAPT_PT_FILES = ("model.int8.pt",)  # adapt's own torch files: state dicts read with weights_only=True, never flair
TRUST_PICKLE_ENV = "ADAPT_TRUST_PICKLE"

__all__ = [
    "MANIFEST_NAME",
    "ModelSource",
    "check_hf_folder",
    "load_flair_model",
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


def public_model_name(value: Any) -> Any:
    """A hub id stays as it is; a local path becomes its folder name (no paths of this or the training machine)."""
    if not isinstance(value, str) or not value:
        return value
    looks_local = os.path.isabs(value) or value.startswith((".", "~")) or value.count("/") > 1 or "\\" in value
    return Path(value).name if looks_local or Path(value).exists() else value


def base_model_id(value: Any) -> tuple[Any, bool]:
    """(a name readers can use for the model `value` was loaded from, True when that name is only a local folder's):
    a Hub id as given, the id of a Hugging Face cache snapshot (`.../models--org--name/snapshots/<sha>`), else the
    folder's name, flagged local."""
    if not isinstance(value, str) or not value:
        return value, False
    parts = Path(value).expanduser().parts
    cached = next((p for p in reversed(parts) if p.startswith("models--")), None)
    if cached is not None and "snapshots" in parts:
        return cached.removeprefix("models--").replace("--", "/"), False
    name = public_model_name(value)
    return name, name != value or Path(value).exists()


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


def resolve_model_source(name_or_path: str | os.PathLike[str], strict: bool = False) -> ModelSource:
    """Decide explicitly (no try/except) whether this names an HF folder, a flair `.pt` file or a hub id.

    A folder is checked before anything in it is loaded (see `check_hf_folder`); `strict=True` refuses folders
    without an adapt manifest.
    """
    from .hub import model_name

    name_or_path = model_name(name_or_path)  # a Hub search result stands for its model id
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelNotFoundError(f"model_name_or_path must be a non-empty path or hub name, got {name_or_path!r}.")
    name = str(name_or_path)
    p = Path(name).expanduser()
    if not p.exists():
        _recover(p)
    if p.is_file():
        if p.name in ADAPT_PT_FILES:
            raise CorruptModelError(f"{name!r} is adapt's int8 copy of a model; load the folder it belongs to.")
        if p.suffix in FLAIR_SUFFIXES:
            return ModelSource("flair", str(p.resolve()))
        raise CorruptModelError(f"{name!r} is a file; expected a model folder (with config.json) or a flair .pt file.")
    if p.is_dir():
        if (p / "config.json").is_file():
            manifest = check_hf_folder(p, strict=strict)
            return ModelSource("hf_dir", str(p.resolve()), manifest)
        found = sorted(f.name for f in p.iterdir())
        flair_files = [f for f in found if f.endswith(FLAIR_SUFFIXES) and f not in ADAPT_PT_FILES]
        if flair_files:
            pick = "final-model.pt" if "final-model.pt" in flair_files else flair_files[0]
            return ModelSource("flair", str((p / pick).resolve()))
        raise CorruptModelError(
            f"{name!r} is a folder but holds no model: no config.json and no flair .pt file (found: {found[:20]}). "
            "Point to a folder written by tuner.save()/export() or by transformers' save_pretrained()."
        )
    if _looks_like_path(name):
        raise ModelNotFoundError(f"Model path {name!r} does not exist. Check the path, or pass a hub model name.")
    return ModelSource("hub", name)


def _recover(path: Path) -> None:
    """Put back the previous save of `path` when a crash left it only as `.<name>.old-*` (see `atomic_directory`)."""
    from .utils import recover_directory

    recover_directory(path)


# what each manifest key may hold (others are free-form task entries)
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "task": (str,),
    "files": (dict,),
    "labels": (list, type(None)),
    "max_length": (int, type(None)),
    "multi_label": (bool,),
    "threshold": (int, float, type(None)),
    "problem_type": (str, type(None)),
    "base_model": (str, type(None)),
    "quantized": (dict, type(None)),
    "onnx": (dict, type(None)),
}


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check `adapt.json` from a folder; an absent manifest gives `{}` (plain transformers folders)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptModelError(f"{path} is not readable JSON ({e}). Re-save the model.") from e
    if not isinstance(data, dict) or "task" not in data:
        raise CorruptModelError(f"{path} is not an adapt manifest (no 'task' key). Re-save the model.")
    for key, kinds in _MANIFEST_TYPES.items():
        value = data.get(key)
        if key in data and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise CorruptModelError(f"{path}: {key!r} is {value!r:.60}, not {wanted}. Re-save the model.")
    if data.get("schema_version", 0) > SCHEMA_VERSION:
        raise CorruptModelError(
            f"{path} has manifest schema {data['schema_version']}, newer than this adapt understands "
            f"({SCHEMA_VERSION}). Upgrade adapt."
        )
    return data


def _read_config(d: Path) -> dict[str, Any]:
    try:
        config = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptModelError(f"{d / 'config.json'} is missing or not valid JSON ({e}).") from e
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str) or not config["model_type"]:
        raise CorruptModelError(
            f"{d / 'config.json'} names no model_type, so transformers cannot know the architecture; "
            "re-save the model with save_pretrained()."
        )
    return config


def check_hf_folder(directory: str | os.PathLike[str], strict: bool = False) -> dict[str, Any]:
    """Check a model folder before loading it; returns its manifest (`{}` for a plain transformers folder).

    Raises `CorruptModelError` unless it has a readable config with a model type, weights and a tokenizer,
    every weight file stays inside the folder, and (when it has a manifest) every listed file matches its
    checksum and the labels and problem type agree with `config.json`. `strict=True` refuses plain folders.
    """
    d = Path(directory)
    _check_readable(d)
    config = _read_config(d)
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
    manifest = read_manifest(d)
    if not manifest:  # a plain transformers folder (the hub cache links its files to blobs elsewhere)
        if strict:
            raise CorruptModelError(f"{str(d)!r} has no {MANIFEST_NAME}, and strict=True loads only folders adapt saved.")
        return manifest
    for name in names.intersection((*WEIGHT_FILES, *ADAPT_PT_FILES, "model.onnx")):
        _inside(d, name, "weight file")
    _verify_checksums(d, manifest)
    _agree(d, config, manifest)
    return manifest


def _check_readable(d: Path) -> None:
    """Every file of the folder must be readable by this process (a container's user is often not the owner)."""
    try:
        unreadable = sorted(f for f in d.iterdir() if f.is_file() and not os.access(f, os.R_OK))
    except PermissionError as e:
        raise CorruptModelError(f"Model folder {str(d)!r} cannot be listed ({e.strerror}); make it readable "
                                f"with chmod a+rx {str(d)!r}.") from e
    if unreadable:
        raise CorruptModelError(
            f"{', '.join(map(str, unreadable))} cannot be read by this user (uid {os.getuid()}): make the files "
            f"readable with chmod -R a+rX on the folder, or save it again with tuner.save() or adapt export, "
            "which write files every user can read."
        )


def _inside(d: Path, name: str, what: str) -> Path:
    """`d / name`, refused unless it resolves (symlinks followed) to a file inside `d`."""
    root = d.resolve()
    f = (d / name).resolve()
    if root not in f.parents:
        raise CorruptModelError(f"{what} {name!r} of {str(d)!r} points outside the folder (to {f}); refusing to read it.")
    return f


def _verify_checksums(d: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not files:
        raise CorruptModelError(
            f"{d / MANIFEST_NAME} lists no files, so the weights cannot be verified. Re-save the model with tuner.save()."
        )
    for name, digest in files.items():
        f = _inside(d, str(name), f"{MANIFEST_NAME} entry")
        if not f.is_file():
            raise CorruptModelError(f"{f} is listed in {MANIFEST_NAME} but missing. Re-save or re-export the model.")
        try:
            actual = sha256_file(f)
        except OSError as e:
            raise CorruptModelError(
                f"{f} cannot be read ({e.strerror}); make the model files readable (chmod a+r) for this user."
            ) from e
        if actual != digest:
            raise CorruptModelError(f"{f} does not match its checksum in {MANIFEST_NAME}: the file is corrupt.")
    for entry in ("quantized", "onnx"):
        copy = manifest.get(entry)
        if copy and copy.get("file") not in files:
            raise CorruptModelError(f"{d / MANIFEST_NAME}: the {entry} copy {copy.get('file')!r} is not a checksummed file.")


def _agree(d: Path, config: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The manifest's labels and problem type must be the config's."""
    where = f"{str(d)!r}: {MANIFEST_NAME} and config.json disagree"
    labels = manifest.get("labels")
    id2label = config.get("id2label")
    if labels is not None and isinstance(id2label, dict):
        try:
            in_config = [str(id2label[k]) for k in sorted(id2label, key=int)]
        except ValueError as e:
            raise CorruptModelError(f"{d / 'config.json'}: id2label keys are not class ids ({e}).") from e
        if in_config != [str(x) for x in labels]:
            raise CorruptModelError(f"{where} on the labels: {labels} vs {in_config}. Re-save the model.")
    problem = manifest.get("problem_type")
    if problem is not None and config.get("problem_type") != problem:
        raise CorruptModelError(f"{where} on problem_type: {problem!r} vs {config.get('problem_type')!r}. Re-save the model.")
    if "multi_label" in manifest and problem is not None and manifest["multi_label"] != (problem == "multi_label_classification"):
        raise CorruptModelError(f"{where}: multi_label={manifest['multi_label']} but problem_type={problem!r}.")


def save_hf_folder(
    model: Any,
    tokenizer: Any,
    directory: str | os.PathLike[str],
    manifest: dict[str, Any],
    extra_files: dict[str, str] | None = None,
    extra_writers: dict[str, Any] | None = None,
    after_model: Callable[[Path], Any] | None = None,
) -> Path:
    """Atomically write model (safetensors), tokenizer, `adapt.json` (with checksums) and extra files.

    `extra_files` maps names to text; `extra_writers` maps names to `fn(path)` for binary files (checksummed);
    `after_model(folder)` completes what the model's own `save_pretrained` wrote (an adapter's base config).
    """
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if after_model is not None:
            after_model(tmp)
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


def pad_with_eos(tokenizer: Any) -> Any:
    """`tokenizer`, padding with its EOS token when it has no pad token (GPT-2, Llama, Mistral, Qwen2)."""
    if tokenizer is not None and tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        logger.info("the tokenizer has no pad token; padding with its EOS token %r", tokenizer.eos_token)
    return tokenizer


def for_split_words(tokenizer: Any) -> Any:
    """`tokenizer` ready for words that come pre-split (`is_split_into_words=True`): a byte-level BPE tokenizer
    (RoBERTa, GPT-2, BART, ModernBERT) sees a word start only after a space, so it must add one before every word
    (`add_prefix_space=True`, what transformers' `run_ner.py` does), which its own class may also demand. Others are
    returned as they are: SentencePiece and WordPiece mark each word already, and a byte-level step behind a regex
    split (Llama 3, Qwen2) would put a space before every piece. The copy is kept when the tokenizer is saved, so
    raw text is later tokenized as the words were."""
    import tempfile

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "add_prefix_space", False) or not _plain_byte_level(backend.pre_tokenizer):
        return tokenizer
    with tempfile.TemporaryDirectory(prefix="adapt-tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        ready = load_tokenizer(tmp, add_prefix_space=True)
    ready.name_or_path = tokenizer.name_or_path
    logger.info("words come pre-split: the tokenizer adds a space before each (add_prefix_space=True)")
    return ready


def _plain_byte_level(pre_tokenizer: Any) -> bool:
    """True for a byte-level pre-tokenizer that splits words itself (its regex) and adds no prefix space."""
    if pre_tokenizer is None:
        return False
    state = json.loads(pre_tokenizer.__getstate__())
    return state.get("type") == "ByteLevel" and state.get("use_regex", True) and not state.get("add_prefix_space", False)


def pad_alike(model: Any, tokenizer: Any) -> Any:
    """`tokenizer` padding with EOS when it has no pad token, and that id recorded in a model config that has
    none: decoder-only classifiers find each row's last token by it, in training, saved, reloaded and served."""
    pad_with_eos(tokenizer)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


def own_weights(model: Any) -> Any:
    """Copy every parameter and buffer out of the weight file's memory map, one tensor at a time.

    Safetensors weights are mapped from the file, so rewriting the file under a running server changed its answers
    or killed it with SIGBUS. After this the process owns its weights and the file can change (redeploy, then
    reload). Tied parameters stay tied: each is copied once, in place.
    """
    import torch

    with torch.no_grad():
        for tensor in {id(t): t for t in (*model.parameters(), *model.buffers())}.values():
            tensor.data = tensor.data.clone()
    return model


def is_task_head(architecture: str, auto_class_name: str | None, head_suffix: str | tuple[str, ...]) -> bool:
    """True when `architecture` (a class name from `config.json`) is a head of `transformers.<auto_class_name>`
    (its model-type mapping: `MarianMTModel` is a seq2seq LM, `GPT2LMHeadModel` a causal LM), or ends in
    `head_suffix` (composite or custom classes: `EncoderDecoderModel`, `...ForSequenceClassification`)."""
    if architecture.endswith(head_suffix):
        return True
    heads = auto_mapping(auto_class_name).values()
    return any(architecture == h or (not isinstance(h, str) and architecture in h) for h in heads)


def auto_mapping(auto_class_name: str | None) -> dict[str, Any]:
    """`transformers.<auto_class_name>`'s model types and the class (name) each loads, registered ones included."""
    import transformers

    mapping = getattr(getattr(transformers, auto_class_name or "", None), "_model_mapping", None)
    registered = {c.model_type: m.__name__ for c, m in getattr(mapping, "_extra_content", {}).items()}
    return {**getattr(mapping, "_model_mapping", {}), **registered}


def family_name(config: Any) -> str:
    """A model family's name as transformers spells it (`Marian`, `GPT2`, `DebertaV2`)."""
    return type(config).__name__.removesuffix("Config") or str(getattr(config, "model_type", "this model"))


def check_task_head(config: Any, auto_class_name: str, task: str, name: str) -> None:
    """Refuse, before any weights load, a model whose type has no head for `task` in transformers (Marian has no
    classification head), naming the heads it has."""
    model_type = getattr(config, "model_type", None)
    if model_type in auto_mapping(auto_class_name):
        return
    family = family_name(config)
    has = [a for a in TASK_AUTO_CLASSES if model_type in auto_mapping(a)]
    raise WrongTaskError(
        f"{family} models (model type {model_type!r}, {name!r}) have no {task.replace('_', ' ')} head in transformers "
        f"({auto_class_name}), so they cannot be tuned for {task!r}. {family} has: {', '.join(has) or 'no task heads'}."
    )


# the auto classes adapt's tasks load, for naming what a model type can do
TASK_AUTO_CLASSES = ("AutoModelForSequenceClassification", "AutoModelForTokenClassification",
                     "AutoModelForQuestionAnswering", "AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModelForSeq2SeqLM")


def load_hf_config(
    source: ModelSource, task: str, head_suffix: str | tuple[str, ...], auto_class_name: str | None = None
) -> Any:
    """The checked `config.json` of a model for `task` (see `load_hf_model`), without loading any weights."""
    from transformers import AutoConfig

    if source.manifest and source.manifest.get("task") != task:
        raise WrongTaskError(f"{source.location!r} holds a {source.manifest.get('task')!r} model; this needs a {task!r} model.")
    try:
        config = AutoConfig.from_pretrained(source.location, trust_remote_code=False)
    except OSError as e:
        raise ModelNotFoundError(
            f"Could not load {source.location!r}: it is not a local folder, and the Hugging Face hub could not "
            f"provide it (offline mode is {'on' if os.environ.get('HF_HUB_OFFLINE') == '1' else 'off'}). ({e})"
        ) from e
    except ValueError as e:  # an unknown model_type, or custom code the folder asks to run
        raise CorruptModelError(f"The config of {source.location!r} cannot be used without running its own code: {e}") from e
    archs = _architectures(config)
    if archs and not any(is_task_head(a, auto_class_name, head_suffix) for a in archs):
        heads = " or ".join(head_suffix) if isinstance(head_suffix, tuple) else head_suffix
        raise WrongTaskError(
            f"{source.location!r} holds a {archs[0]}, not a model with a {heads} head. "
            f"Fine-tune it for {task!r} first, or use the Easy module for its task."
        )
    return config


def load_tokenizer(location: str | os.PathLike[str], **kwargs: Any) -> Any:
    """`AutoTokenizer.from_pretrained(location)` (no remote code unless `trust_remote_code=True` is passed): a missing
    path or hub id is a `ModelNotFoundError`, damaged tokenizer files a `CorruptModelError`."""
    from transformers import AutoTokenizer

    from .hub import model_name

    name = str(model_name(location))
    if not Path(name).expanduser().exists() and _looks_like_path(name):
        raise ModelNotFoundError(f"Tokenizer path {name!r} does not exist. Check the path, or pass a hub model name.")
    try:
        return AutoTokenizer.from_pretrained(name, **{"trust_remote_code": False, **kwargs})
    except OSError as e:
        raise ModelNotFoundError(
            f"Could not load a tokenizer from {name!r}: not a local folder, and the hub could not provide it "
            f"(offline mode is {'on' if os.environ.get('HF_HUB_OFFLINE') == '1' else 'off'}). ({e})"
        ) from e
    except Exception as e:  # the tokenizers library raises bare Exceptions for bad files
        raise CorruptModelError(
            f"Could not load the tokenizer of {location!r} ({type(e).__name__}: {e}). Its tokenizer files "
            "(tokenizer.json, vocab.txt, ...) are damaged or missing; re-save the model."
        ) from e


def pickle_allowed(trust_pickle: bool = False) -> bool:
    """True with `trust_pickle=True`, or when `ADAPT_TRUST_PICKLE` is 1/true/yes (for the CLI and the server)."""
    return bool(trust_pickle) or os.environ.get(TRUST_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def load_flair_model(source: ModelSource, class_name: str, trust_pickle: bool = False) -> Any:
    """Load a flair `.pt` model and check it is a `flair.models.<class_name>`; in eval mode.

    A flair `.pt` file is a pickle, and unpickling runs code the file names: it is loaded only with consent
    (`trust_pickle=True` or `ADAPT_TRUST_PICKLE=1`), and the refusal comes before the file is opened.
    """
    if not pickle_allowed(trust_pickle):
        raise UntrustedPickleError(
            f"{source.location!r} is a flair model, stored as a Python pickle: loading it runs code from the file. "
            f"Load only files you trust, with trust_pickle=True (Easy modules) or {TRUST_PICKLE_ENV}=1 (CLI, server)."
        )
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
