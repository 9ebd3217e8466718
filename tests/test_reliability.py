"""Trust boundaries, integrity checks, crash safety and bad input, as tables of cases.

Every case is one of the defects found by probing the library: a pickle that runs code on load, a manifest that
disagrees with the files, a save interrupted at every step, and inputs that used to pass silently or fail with a
raw error. The models are tiny (a ~0.3M-parameter BERT), so the whole file runs in well under two minutes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from adapt import (
    AdaptError,
    CorruptModelError,
    DecodeError,
    EasySequenceClassifier,
    EasyTokenTagger,
    EmptyDatasetError,
    InvalidInputError,
    ModelNotFoundError,
    NumClassesError,
    SequenceClassificationDatasets,
    SequenceClassificationTuner,
    TokenClassificationDatasets,
    UntrustedPickleError,
)
from adapt.modelio import check_hf_folder, resolve_model_source

from .contract_utils import run_cli, server
from .serving_utils import http


# ---------------------------------------------------------------------------------------------------
# pickles need consent
# ---------------------------------------------------------------------------------------------------
class _Evil:
    """Unpickling this runs a shell command that writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _evil_pickle(path: Path, marker: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": _Evil(marker)}, path)
    return path


@pytest.mark.parametrize("layout", ["file", "flair folder"])
@pytest.mark.parametrize("easy", [EasySequenceClassifier, EasyTokenTagger])
def test_a_pickle_runs_nothing_without_consent(layout: str, easy: type, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ADAPT_TRUST_PICKLE", raising=False)
    marker = tmp_path / "pwned"
    pt = _evil_pickle(tmp_path / "flair" / "final-model.pt", marker)
    target = pt if layout == "file" else pt.parent
    with pytest.raises(UntrustedPickleError, match="pickle: loading it runs code.*trust_pickle=True.*ADAPT_TRUST_PICKLE=1"):
        easy().tag_text("some text", target)
    assert not marker.exists(), "the pickle ran before consent was checked"
    with pytest.raises(CorruptModelError):  # with consent it is unpickled (the code runs), then refused as no model
        easy(trust_pickle=True).tag_text("some text", target)
    assert marker.exists()
    marker.unlink()
    monkeypatch.setenv("ADAPT_TRUST_PICKLE", "1")  # the CLI's and the server's consent
    with pytest.raises(CorruptModelError):
        easy().tag_text("some text", target)
    assert marker.exists()


def test_an_int8_copy_is_never_taken_for_a_flair_model(tiny_cls_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "export"
    _evil_pickle(folder / "model.int8.pt", marker)  # an export folder that lost its config.json
    with pytest.raises(CorruptModelError, match="no config.json"):
        EasySequenceClassifier(trust_pickle=True).tag_text("text", folder)
    with pytest.raises(CorruptModelError, match="int8 copy"):
        EasySequenceClassifier(trust_pickle=True).tag_text("text", folder / "model.int8.pt")
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------
# the manifest is the truth
# ---------------------------------------------------------------------------------------------------
def _resign(folder: Path, name: str) -> None:
    manifest = json.loads((folder / "adapt.json").read_text())
    manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "adapt.json").write_text(json.dumps(manifest))


def _edit_json(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        change(data)
        (folder / name).write_text(json.dumps(data))

    return edit


def _swap_labels(config: dict[str, Any]) -> None:
    config["id2label"]["0"], config["id2label"]["1"] = config["id2label"]["1"], config["id2label"]["0"]


def _flip_header(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[0] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))


def _outside_symlink(folder: Path) -> None:
    outside = folder.parent / "elsewhere.safetensors"
    shutil.move(folder / "model.safetensors", outside)
    (folder / "model.safetensors").symlink_to(outside)


def _truncate_and_resign(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    _resign(folder, "model.safetensors")


def _only_tokenizer_config(folder: Path) -> None:
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")) and f.name != "tokenizer_config.json":
            f.unlink()


def _drop(*names: str) -> Callable[[Path], None]:
    return lambda folder: [(folder / n).unlink() for n in names]  # type: ignore[func-returns-value]


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text)  # type: ignore[func-returns-value]


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest lists no files": (_edit_json("adapt.json", lambda m: m.pop("files")), "lists no files"),
    "tampered weights": (_flip_header, "does not match its checksum"),
    "labels swapped in config": (_edit_json("config.json", _swap_labels), "disagree on the labels"),
    "problem_type flipped": (
        _edit_json("config.json", lambda c: c.update(problem_type="multi_label_classification")), "disagree on problem_type"
    ),
    "file entry outside the folder": (
        _edit_json("adapt.json", lambda m: m["files"].update({"../../../../etc/hostname": "0" * 64})), "points outside"
    ),
    "onnx entry outside": (_edit_json("adapt.json", lambda m: m.update(onnx={"file": "/etc/hostname"})), "not a checksummed"),
    "weights linked from outside": (_outside_symlink, "points outside"),
    "truncated weights, re-signed": (_truncate_and_resign, "Could not load the weights"),
    "invalid tokenizer.json": (_write("tokenizer.json", '{"model": 3}'), "Could not load the tokenizer"),
    "only tokenizer_config.json": (_only_tokenizer_config, "lacks a tokenizer"),
    "config.json is {}": (_write("config.json", "{}"), "no model_type"),
    "config.json is blank": (_write("config.json", ""), "not valid JSON"),
    "schema_version 'one'": (_edit_json("adapt.json", lambda m: m.update(schema_version="one")), "'schema_version' is 'one'"),
    "max_length '64'": (_edit_json("adapt.json", lambda m: m.update(max_length="64")), "'max_length' is '64'"),
    "files as a list": (_edit_json("adapt.json", lambda m: m.update(files=["model.safetensors"])), "'files' is"),
    "unreadable weights": (lambda f: os.chmod(f / "model.safetensors", 0), r"cannot be read .*\(chmod a\+r\)"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_damaged_folder_is_a_corrupt_model_error_naming_the_problem(
    case: str, tiny_cls_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    folder = tmp_path / "bbc"
    shutil.copytree(tiny_cls_dir, folder)
    damage, message = CORRUPTIONS[case]
    damage(folder)
    if case == "unreadable weights" and os.geteuid() == 0:  # root reads any file: fail the read as for others
        import adapt.modelio

        def denied(path: Any) -> str:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(adapt.modelio, "sha256_file", denied)
    with pytest.raises(CorruptModelError, match=message):
        EasySequenceClassifier().tag_text("Shares fell sharply", folder)
    code, _, err = run_cli(capsys, "predict", folder, "Shares fell")
    assert code == 2 and err.startswith("adapt: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_plain_folders_load_unless_strict(tiny_cls_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(tiny_cls_dir, folder)
    (folder / "adapt.json").unlink()  # a plain transformers folder: nothing to verify against
    assert EasySequenceClassifier().tag_text("Shares fell", folder)["predictions"]
    with pytest.raises(CorruptModelError, match="strict=True loads only folders adapt saved"):
        EasySequenceClassifier(strict=True).tag_text("Shares fell", folder)
    assert EasySequenceClassifier(strict=True).tag_text("Shares fell", tiny_cls_dir)["predictions"]


def test_serve_refuses_a_head_that_does_not_fit_its_config_in_one_line(tiny_cls_dir: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(tiny_cls_dir, folder)
    (folder / "adapt.json").unlink()
    _edit_json("config.json", lambda c: c.update(id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2}))(
        folder
    )
    import signal

    before = signal.getsignal(signal.SIGINT)
    code, _, err = run_cli(capsys, "serve", folder, "--port", "1")
    assert code == 2 and "does not fit config.json" in err and err.count("\n") == 1
    assert signal.getsignal(signal.SIGINT) is before  # serve's exit-0 handlers do not outlive it


# ---------------------------------------------------------------------------------------------------
# saves survive any crash
# ---------------------------------------------------------------------------------------------------
def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def _save_marker(target: Path, value: str) -> None:
    from adapt.utils import atomic_directory

    with atomic_directory(target) as tmp:
        (tmp / "config.json").write_text(json.dumps({"value": value}))
        (tmp / "model.safetensors").write_bytes(value.encode() * 100)


def _value(target: Path) -> str:
    return json.loads((target / "config.json").read_text())["value"]


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic exchange", "two renames"])
@pytest.mark.parametrize("fail_at", [0, 1, 2, 3])
def test_a_save_that_fails_at_any_step_leaves_a_loadable_target(
    fail_at: int, exchange: bool, tmp_path: Path, monkeypatch
) -> None:
    import adapt.utils as utils

    target = tmp_path / "model"
    _save_marker(target, "old")
    calls = {"n": 0}
    real_rename, real_exchange = os.rename, utils.exchange_paths

    def step() -> None:
        calls["n"] += 1
        if calls["n"] - 1 == fail_at:
            raise OSError(28, "injected failure")

    def rename(a: Any, b: Any) -> None:
        step()
        real_rename(a, b)

    def swap(a: Path, b: Path) -> bool:
        step()
        return real_exchange(a, b) if exchange else False

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(utils, "exchange_paths", swap)
    with contextlib.suppress(OSError):
        _save_marker(target, "new")
    monkeypatch.undo()
    assert _value(target) in ("old", "new"), "the target must always hold a complete save"
    _save_marker(target, "next")
    assert _value(target) == "next" and _leftovers(target) == []


def test_a_crash_between_the_two_renames_is_recovered_on_next_load(tiny_cls_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import adapt.utils as utils

    target = tmp_path / "bbc"
    shutil.copytree(tiny_cls_dir, target)
    real_rename = os.rename
    calls = {"n": 0}

    class Killed(BaseException):  # like SIGKILL: no handler runs
        pass

    def rename(a: Any, b: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # target -> .old-* done, .tmp-* -> target not
            raise Killed
        real_rename(a, b)

    monkeypatch.setattr(utils, "exchange_paths", lambda a, b: False)
    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(Killed):
        _save_marker(target, "new")
    monkeypatch.undo()
    assert not target.exists() and any(".old-" in n for n in _leftovers(target))
    assert EasySequenceClassifier().tag_text("Shares fell", target)["predictions"]  # the old save is back
    assert (target / "adapt.json").is_file() and _leftovers(target) == []


def test_saves_fsync_and_are_readable_by_others(tiny_cls_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import stat

    from adapt.utils import atomic_directory

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "m") as tmp:
            for f in tiny_cls_dir.iterdir():
                shutil.copy2(f, tmp / f.name)
                os.chmod(tmp / f.name, 0o600)  # as safetensors writes its files
    finally:
        os.umask(old)
    files = list((tmp_path / "m").iterdir())
    assert len(synced) >= len(files) + 2, "every file, the folder and its parent are fsynced"
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755
    old = os.umask(0o077)
    try:
        _save_marker(tmp_path / "private", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private" / "config.json").stat().st_mode) == 0o600  # the umask is honoured


# ---------------------------------------------------------------------------------------------------
# bad input gets an AdaptError naming the row, file or value
# ---------------------------------------------------------------------------------------------------
def _frame(labels: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"text number {i} about things" for i in range(len(labels))], "label": labels})


def _csv(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    return path


def _tokens(tags: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"tokens": [["Paris", "is", "big"]] * len(tags), "tags": tags})


BAD_DATA: dict[str, tuple[Callable[[Path, str], Any], type[AdaptError], str]] = {
    "one class": (lambda p, m: SequenceClassificationDatasets.from_dfs(_frame(["a"] * 8), tokenizer_name=m), NumClassesError,
                  "only 1 class"),
    "mixed int and str labels": (
        lambda p, m: SequenceClassificationDatasets.from_dfs(_frame([1, "b"] * 4), tokenizer_name=m), InvalidInputError,
        "column 'label' mixes int, str",
    ),
    "a list, not a DataFrame": (lambda p, m: SequenceClassificationDatasets.from_dfs([1, 2], tokenizer_name=m),
                                InvalidInputError, "Expected a pandas DataFrame"),
    "missing tokenizer path": (lambda p, m: SequenceClassificationDatasets.from_dfs(_frame(["a", "b"] * 4),
                               tokenizer_name=str(p / "nope" / "tok")), ModelNotFoundError, "does not exist"),
    "empty CSV": (lambda p, m: SequenceClassificationDatasets.from_csvs(_csv(p, b""), tokenizer_name=m),
                  EmptyDatasetError, "holds no rows"),
    "header-only CSV": (lambda p, m: SequenceClassificationDatasets.from_csvs(_csv(p, b"text,label\n"), tokenizer_name=m),
                        EmptyDatasetError, "holds no rows"),
    "ragged CSV row": (lambda p, m: SequenceClassificationDatasets.from_csvs(
        _csv(p, b"text,label\n" + b"a text,x\n" * 5 + b"a,b,c,d\n" + b"b text,y\n" * 5), tokenizer_name=m),
        InvalidInputError, "Cannot read"),
    "mixed encodings": (lambda p, m: SequenceClassificationDatasets.from_csvs(
        _csv(p, b"text,label\n" + "café,x\n".encode() * 4 + "caf\xe9,y\n".encode("latin-1") * 4), tokenizer_name=m),
        DecodeError, "Pass the file's encoding"),
    "NaN tags": (lambda p, m: TokenClassificationDatasets.from_dfs(_tokens([["B-LOC", "O", "O"], float("nan")] * 3),
                 tokenizer_name=m), InvalidInputError, "tags"),
    "int tags": (lambda p, m: TokenClassificationDatasets.from_dfs(_tokens([[1, 0, 0]] * 6), tokenizer_name=m),
                 InvalidInputError, "tags are names"),
    "whitespace-only token": (lambda p, m: TokenClassificationDatasets.from_dfs(
        pd.DataFrame({"tokens": [["Paris", " ", "big"]] * 6, "tags": [["B-LOC", "O", "O"]] * 6}), tokenizer_name=m),
        InvalidInputError, "whitespace-only"),
    "CoNLL line with one column": (lambda p, m: TokenClassificationDatasets.from_conll(
        _csv(p, b"Paris B-LOC\nBieber\n\nis O\n"), tokenizer_name=m), InvalidInputError, "1 column"),
    "latin-1 CoNLL read as UTF-8": (lambda p, m: TokenClassificationDatasets.from_conll(
        _csv(p, "café O\n\nParis B-LOC\n".encode("latin-1")), tokenizer_name=m), DecodeError, "encoding='latin-1'"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_gets_an_adapt_error(case: str, tiny_bert_dir: Path, tmp_path: Path) -> None:
    build, error, message = BAD_DATA[case]
    with pytest.raises(error, match=message):
        build(tmp_path, str(tiny_bert_dir))


def test_a_nul_byte_in_a_csv_is_text_not_a_crash(tiny_bert_dir: Path, tmp_path: Path) -> None:
    raw = b"text,label\n" + b"a\x00b text,x\n" * 4 + b"c text,y\n" * 4
    dsets = SequenceClassificationDatasets.from_csvs(_csv(tmp_path, raw), tokenizer_name=str(tiny_bert_dir))
    assert dsets.vocab == ["x", "y"]


def test_labels_that_differ_only_in_spaces_or_case_warn(tiny_bert_dir: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SequenceClassificationDatasets.from_dfs(_frame(["tech", "tech ", "sport"] * 4), tokenizer_name=str(tiny_bert_dir))
    assert any("differ only in case or spaces" in str(w.message) for w in caught)


@pytest.mark.parametrize("lr", [-1e-3, 0, float("nan"), slice(-1e-4, 1e-3), "1e-3"])
def test_a_learning_rate_must_be_positive(lr: Any, tiny_bert_dir: Path) -> None:
    dsets = SequenceClassificationDatasets.from_dfs(_frame(["a", "b"] * 4), tokenizer_name=str(tiny_bert_dir))
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=4), str(tiny_bert_dir))
    with pytest.raises(InvalidInputError, match="lr must be a positive number"):
        tuner.tune(1, lr=lr)


@pytest.mark.parametrize("size", ["8", 8.0, 0, True])
def test_a_batch_size_must_be_a_positive_int(size: Any, tiny_cls_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="batch size must be a positive integer"):
        EasySequenceClassifier().tag_text("Shares fell", tiny_cls_dir, mini_batch_size=size)


def test_a_lone_surrogate_gets_422_alone_or_in_a_pair(tiny_cls_dir: Path) -> None:
    with server(tiny_cls_dir) as base:
        for body in ({"texts": ["abc \ud800"]}, {"texts": [{"text": "\ud800", "text_pair": "x"}]}):
            status, got = http("POST", f"{base}/predict", raw=json.dumps(body).encode())
            assert status == 422 and "lone surrogate" in got["detail"], got
        assert http("POST", f"{base}/predict", {"texts": ["fine"]})[0] == 200


def test_check_hf_folder_returns_the_verified_manifest(tiny_cls_dir: Path) -> None:
    manifest = check_hf_folder(tiny_cls_dir)
    assert manifest["task"] == "sequence_classification" and "model.safetensors" in manifest["files"]
    assert resolve_model_source(tiny_cls_dir).manifest == manifest
