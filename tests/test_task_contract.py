"""The task contract: every task in the registry through every door (Python, Easy, CLI, REST), with the same JSON.

Each task trains a tiny model (a BERT, GPT-2 or BART of well under 1M parameters) for one epoch on a few dozen
rows; the tests check plumbing and agreement, the per-task test files check learning. A toy task defined in
one test file (`tests/toy_task.py`) joins through the registry alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapt.errors import InvalidInputError
from adapt.inference import prepare, run
from adapt.tasks import all_tasks, get_task

from .contract_utils import DATA, INPUTS, TASK_NAMES, easy_call, max_length, run_cli, server, tuner_call, write_jsonl
from .serving_utils import free_port, http, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ("low", "medium", "high")


# ---------------------------------------------------------------------------------------------------
# one answer through every door
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_door_gives_the_same_json(task: str, trained_tasks, tmp_path: Path, capsys) -> None:
    spec = get_task(task)
    tuner, folder = trained_tasks[task]
    inputs = INPUTS[task]
    easy = spec.easy()
    path = write_jsonl(tmp_path / "inputs.jsonl", inputs)
    with server(folder) as base:
        for level in LEVELS:
            want = easy_call(spec, easy, inputs, folder, level)
            assert tuner_call(spec, tuner, inputs, level) == want, f"Tuner.predict differs at {level}"
            code, out, err = run_cli(capsys, "predict", folder, "--file", path, "--detail-level", level, "--output", "json")
            assert code == 0, err
            assert json.loads(out) == want, f"adapt predict differs at {level}"
            status, got = http("POST", f"{base}/predict", {"texts": inputs, "detail_level": level})
            assert status == 200, got
            assert got == want, f"POST /predict differs at {level}"
            # the default JSON lines: line i is input i's part of the same batched call
            code, out, err = run_cli(capsys, "predict", folder, "--file", path, "--detail-level", level)
            predictor = easy.get_model(folder)
            batched = run(predictor, prepare(predictor, inputs, spec.fields, level))
            assert [json.loads(line) for line in out.splitlines()] == [
                batched.select(i, i + 1).to_dict(level) for i in range(len(inputs))
            ]
        assert http("GET", f"{base}/metadata")[1]["task"] == task
    if task == "language_modeling":  # generators give token log-probabilities at High, through every door
        high = easy_call(spec, easy, inputs, folder, "high")
        assert all(len(s) == len(i) > 0 for s, i in zip(high["token_scores"], high["token_ids"], strict=True))


def _cli_value(value: Any) -> str:
    return json.dumps(value.value if hasattr(value, "value") else value)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_declared_option_is_accepted_and_a_misspelled_one_refused_everywhere(
    task: str, trained_tasks, tmp_path: Path, capsys
) -> None:
    spec = get_task(task)
    tuner, folder = trained_tasks[task]
    inputs = INPUTS[task]
    easy = spec.easy()
    path = write_jsonl(tmp_path / "inputs.jsonl", inputs)
    declared = spec.predictor.options
    examples = {o.name: o.example for o in declared}
    if "class_names" in examples:
        examples["class_names"] = [c.upper() for c in tuner.classes]
    assert all(v is not None for v in examples.values()), "every declared option needs a valid example"
    with server(folder) as base:
        for name, value in examples.items():
            easy.predict(inputs, folder, **{name: value})
            code, _, err = run_cli(capsys, "predict", folder, "--file", path, "--param", f"{name}={_cli_value(value)}")
            assert code == 0, f"--param {name}: {err}"
            status, body = http("POST", f"{base}/predict", {"texts": inputs, "parameters": {name: value}})
            assert status == 200, f"parameter {name}: {body}"
        first = declared[0].name
        bad = first[:-1] + first[-1] * 2 + "x"
        accepted = ", ".join(o.name for o in declared)
        with pytest.raises(InvalidInputError) as e:
            easy.predict(inputs, folder, **{bad: 1})
        assert f"Unknown option {bad!r}" in str(e.value) and f"Did you mean {first!r}" in str(e.value)
        assert f"Accepted: {accepted}." in str(e.value)
        code, _, err = run_cli(capsys, "predict", folder, "--file", path, "--param", f"{bad}=1")
        assert code == 2 and err.startswith("adapt: error: ") and err.count("\n") == 1
        assert f"Did you mean {first!r}" in err and accepted in err
        status, body = http("POST", f"{base}/predict", {"texts": inputs, "parameters": {bad: 1}})
        assert status == 422 and f"Did you mean {first!r}" in body["detail"] and accepted in body["detail"]
        for internal in ("with_scores", "scores"):  # what the detail level decides is never a public parameter
            assert http("POST", f"{base}/predict", {"texts": inputs, "parameters": {internal: True}})[0] == 422


def test_declared_options_match_what_the_predictors_take() -> None:
    import inspect

    for spec in all_tasks().values():
        for predictor in filter(None, (spec.predictor, spec.flair_predictor)):
            params = inspect.signature(predictor.predict).parameters
            named = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty} - {"batch_size", "scores"}
            declared = {o.name for o in predictor.options}
            takes_rest = any(p.kind is p.VAR_KEYWORD for p in params.values())
            assert named <= declared and (takes_rest or declared <= named), (predictor.__name__, named ^ declared)


# ---------------------------------------------------------------------------------------------------
# the command line, end to end
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASK_NAMES)
def test_cli_round_trip(task: str, toy_registered, task_files: Path, tiny_models, tmp_path: Path, capsys) -> None:
    spec = get_task(task)
    file, kind = DATA[task]
    out = tmp_path / "model"
    code, stdout, err = run_cli(
        capsys, "tune", task_files / file, "--task", task, "--model", tiny_models[kind], "--out", out,
        "--epochs", "1", "--lr", "1e-3", "--batch-size", "8", "--max-length", max_length(task),
    )
    assert code == 0, err[-3000:]
    assert stdout.count("\n") == 1, "adapt tune writes one JSON line to stdout; progress goes to stderr"
    summary = json.loads(stdout)
    assert summary["saved"] == str(out) and summary["task"] == task and set(spec.metrics) <= set(summary["metrics"])
    inputs = write_jsonl(tmp_path / "inputs.jsonl", INPUTS[task])
    code, stdout, err = run_cli(capsys, "predict", out, "--file", inputs, "--detail-level", "medium")
    assert code == 0 and len(stdout.splitlines()) == len(INPUTS[task]), err

    copies = [f"--{c}" for c in ("int8", "onnx") if c in spec.fast_copies]
    exported = tmp_path / "exported"
    code, stdout, err = run_cli(capsys, "export", out, exported, *copies, "--parity-file", inputs, "--on-parity-fail", "warn")
    assert code == 0, err[-3000:]
    manifest = json.loads((exported / "adapt.json").read_text())
    assert ("quantized" in manifest) == ("int8" in spec.fast_copies) and ("onnx" in manifest) == ("onnx" in spec.fast_copies)
    for refused in sorted({"int8", "onnx"} - spec.fast_copies):
        code, _, err = run_cli(capsys, "export", out, tmp_path / f"no-{refused}", f"--{refused}", "--parity-file", inputs)
        assert code == 2 and f"no {refused} copy" in err and not (tmp_path / f"no-{refused}").exists()

    with server(exported) as base:
        status, got = http("POST", f"{base}/predict", {"texts": INPUTS[task]})
    assert status == 200, got
    assert got == easy_call(spec, spec.easy(), INPUTS[task], exported, "low")
    if task == "sequence_classification":  # export verifies what it copies; input line N answers line N
        (out / "model.safetensors").write_bytes(b"corrupt")
        code, _, err = run_cli(capsys, "export", out, tmp_path / "again")
        assert code == 2 and "checksum" in err and not (tmp_path / "again").exists()
        gap = tmp_path / "gap.txt"
        gap.write_text("first\n\nthird\n")
        code, _, err = run_cli(capsys, "predict", exported, "--file", gap)
        assert code == 2 and "gap.txt:2 is blank" in err


def test_cli_checks_choices_before_loading_anything(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "tune", tmp_path / "missing.csv", "--model", tmp_path / "nope", "--out", tmp_path / "o",
                           "--strategy", "OneCycel")
    assert code == 2 and "Did you mean 'OneCycle'?" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "predict", tmp_path / "nope", "hello", "--detail-level", "hihg")
    assert code == 2 and "Did you mean 'High'?" in err
    code, _, err = run_cli(capsys, "tune", tmp_path / "x.csv", "--task", "clasification", "--model", "m", "--out", "o")
    assert code == 2 and "Unknown task 'clasification'. Did you mean 'classification'?" in err
    code, _, err = run_cli(capsys, "tune", tmp_path / "x.csv", "--task", "qa", "--model", "m", "--out", "o",
                           "--option", "doc_strid=3")
    assert code == 2 and "Did you mean 'doc_stride'?" in err


def test_tasks_command_lists_the_registry(toy_registered, capsys) -> None:
    code, out, _ = run_cli(capsys, "tasks")
    rows = {json.loads(line)["task"]: json.loads(line) for line in out.splitlines()}
    assert code == 0 and set(rows) == set(all_tasks())
    assert rows["question_answering"]["fields"] == ["question", "context"]
    assert "long_text" in rows["sequence_classification"]["predict_options"]


# ---------------------------------------------------------------------------------------------------
# a task in one file
# ---------------------------------------------------------------------------------------------------
def test_a_task_declared_in_one_file_is_trainable_predictable_servable_and_on_the_cli(
    toy_registered, task_files: Path, tiny_models, tmp_path: Path
) -> None:
    import adapt

    assert adapt.UpperCaseTuner.__module__ == "tests.toy_task" and "EasyUpperCase" in adapt.__all__
    env = {**os.environ, "ADAPT_TASK_MODULES": "tests.toy_task", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}

    def adapt_cli(*args: Any) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "adapt.cli", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)

    out = tmp_path / "upper"
    res = adapt_cli("tune", task_files / "upper.csv", "--task", "upper", "--model", tiny_models["bert"], "--out", out,
                    "--epochs", "4", "--lr", "3e-3", "--batch-size", "8", "--max-length", "32")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["metrics"]["accuracy"] >= 0.9, res.stdout  # it learned what upper case is
    res = adapt_cli("predict", out, "SHARES FELL SHARPLY TODAY", "the striker scored twice")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [json.loads(line)["predictions"] for line in res.stdout.splitlines()] == [["upper"], ["lower"]]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "adapt.cli", "serve", str(out), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        status, body = http("POST", f"{base}/predict", {"texts": ["LOUD NEWS"]})
        assert status == 200 and body["predictions"] == ["upper"]
        assert http("GET", f"{base}/metadata")[1]["task"] == "upper_case"
    finally:
        stop(proc)


# ---------------------------------------------------------------------------------------------------
# calls of the previous version keep working
# ---------------------------------------------------------------------------------------------------
def test_easy_verbs_take_their_arguments_by_name_and_position(trained_tasks) -> None:
    _, folder = trained_tasks["sequence_classification"]
    clf = get_task("sequence_classification").easy()
    by_name = clf.tag_text(text="Shares fell", model_name_or_path=folder)
    names = ["A", "B", "C", "D", "E"]
    relabelled = clf.tag_text("Shares fell", folder, 32, "medium", names)  # class_names was the 5th parameter
    assert by_name["predictions"] and relabelled["classes"] == names


def test_shared_constructor_keywords_accept_what_they_did(task_files: Path, tiny_models) -> None:
    import numpy as np
    from datasets import ClassLabel, Features, Value

    from adapt import QuestionAnsweringDatasets, SequenceClassificationDatasets

    bert = str(tiny_models["bert"])
    labels = ["business", "entertainment", "politics", "sports", "tech"]
    features = Features({"text": Value("string"), "label": ClassLabel(names=labels)})
    d = SequenceClassificationDatasets.from_csvs(task_files / "cls.csv", "text", "label", bert, seed=None,
                                                 split_pct=np.float64(0.25), features=features, max_length=np.int64(16))
    assert d.vocab == labels and d.max_length == 16
    with pytest.raises(InvalidInputError, match="Unknown argument 'sedd'"):  # checked before the (missing) file is read
        SequenceClassificationDatasets.from_csvs(task_files / "missing.csv", "text", "label", bert, sedd=1)
    with pytest.raises(InvalidInputError, match="does not use \\['tokenize_kwargs'\\]"):
        QuestionAnsweringDatasets.from_jsons(task_files / "qa.jsonl", bert, tokenize_kwargs={"padding": True})


def test_generation_takes_any_generation_config_field_through_generate_kwargs(trained_tasks) -> None:
    spec = get_task("language_modeling")
    _, folder = trained_tasks["language_modeling"]
    gen = spec.easy()
    plain = gen.generate("The match", folder, num_tokens_to_produce=6)
    extra = gen.generate("The match", folder, num_tokens_to_produce=6, generate_kwargs={"repetition_penalty": 1.0})
    assert plain == extra
    with pytest.raises(InvalidInputError, match="not GenerationConfig fields"):
        gen.generate("The match", folder, generate_kwargs={"bogus": 1})
    with pytest.raises(InvalidInputError, match="may not set \\['max_new_tokens'\\]"):
        gen.generate("The match", folder, generate_kwargs={"max_new_tokens": 3})


def test_the_registry_is_whole_for_concurrent_first_lookups() -> None:
    code = (
        "import threading\nfrom adapt.tasks import get_task\nerrors = []\n"
        "def look():\n    try:\n        get_task('translation')\n    except Exception as e:\n        errors.append(e)\n"
        "threads = [threading.Thread(target=look) for _ in range(8)]\n[t.start() for t in threads]\n[t.join() for t in threads]\n"
        "print(len(errors))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "0"


def test_cli_input_errors_are_one_line(trained_tasks, tmp_path: Path, capsys) -> None:
    _, folder = trained_tasks["sequence_classification"]
    code, _, err = run_cli(capsys, "predict", folder, "--jsonl", "not json")
    assert code == 2 and "argument 1 is not JSON" in err
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    code, _, err = run_cli(capsys, "predict", folder, "--file", bad)
    assert code == 2 and "Cannot decode" in err and err.count("\n") == 1


def test_batch_size_is_accepted_by_that_name_in_every_layer(trained_tasks) -> None:
    """`batch_size=` everywhere; `bs` (Tuner.predict, fastai) and `mini_batch_size` (Easy, AdaptNLP) stay as aliases."""
    spec = get_task("sequence_classification")
    tuner, folder = trained_tasks["sequence_classification"]
    inputs = INPUTS["sequence_classification"]
    easy = spec.easy()
    one = easy.tag_text(inputs, folder, mini_batch_size=1)  # batches of one text: no padding, the same numbers
    assert easy.tag_text(inputs, folder, batch_size=1) == one
    assert tuner.predict(inputs, batch_size=1) == tuner.predict(inputs, bs=1) == one
    with pytest.raises(InvalidInputError, match="same setting"):
        easy.tag_text(inputs, folder, mini_batch_size=4, batch_size=2)
    assert tuner.datasets.dataloaders(bs=4).train.bs == 4


@pytest.mark.parametrize("task", ["sequence_classification", "language_modeling", "summarization"])
def test_many_inputs_show_a_progress_bar_on_stderr_unless_turned_off(task, trained_tasks, monkeypatch, capsys,
                                                                     tmp_path) -> None:
    """Encoders and generators, through the Easy verb and `adapt predict --file`."""
    from adapt import inference

    spec = get_task(task)
    _, folder = trained_tasks[task]
    easy = spec.easy()
    monkeypatch.setattr(inference, "PROGRESS_MIN_INPUTS", 5)
    texts = [INPUTS[task][0]] * 6
    capsys.readouterr()
    easy_call(spec, easy, texts, folder, "low", mini_batch_size=2)
    assert "predicting 6 inputs" in capsys.readouterr().err
    easy_call(spec, easy, texts[:5], folder, "low", mini_batch_size=2)
    assert "predicting" not in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    code, _, err = run_cli(capsys, "predict", str(folder), "--file", str(tmp_path / "in.txt"), "--batch-size", "2")
    assert code == 0 and "predicting 6 inputs" in err, err
    monkeypatch.setenv("ADAPT_PROGRESS", "0")
    easy_call(spec, easy, texts, folder, "low", mini_batch_size=2)
    assert "predicting" not in capsys.readouterr().err


@pytest.mark.parametrize("task", TASK_NAMES)
def test_predict_a_csv_to_a_csv(task: str, trained_tasks, tmp_path: Path, capsys) -> None:
    """`adapt predict --file data.csv --text-col COL --output csv`: every input column, then the predictions, one
    row per input row, the same as the Easy verb's."""
    import csv
    import io

    spec = get_task(task)
    _, folder = trained_tasks[task]
    inputs = INPUTS[task]
    path = tmp_path / "data.csv"
    first = spec.fields[0].name
    with path.open("w", newline="", encoding="utf-8-sig") as f:  # a spreadsheet's "CSV UTF-8", byte-order mark first
        writer = csv.writer(f)
        names = ["id", "review" if first == "text" else first, *(x.name for x in spec.fields[1:])]
        writer.writerow(names)
        for k, item in enumerate(inputs):
            item = item if isinstance(item, dict) else {"text": item}
            writer.writerow([k, item.get("text", item.get(first)), *(item.get(x.name, "") for x in spec.fields[1:])])
    args = ["--text-col", "review"] if first == "text" else []
    code, out, err = run_cli(capsys, "predict", folder, "--file", path, "--output", "csv", *args)
    assert code == 0, err[-2000:]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == [str(k) for k in range(len(inputs))] and set(names) <= set(rows[0])
    want = easy_call(spec, spec.easy(), inputs, folder, "low")
    key = next(k for k in want if k in rows[0] and k not in names)
    got = [r[key] for r in rows]
    assert got == [v if isinstance(v, str) else json.dumps(v) for v in want[key]] and "sentences" not in rows[0]
    if first == "text":
        code, _, err = run_cli(capsys, "predict", folder, "--file", path, "--output", "csv", "--text-col", "reveiw")
        assert code == 2 and "Did you mean 'review'?" in err and "Available columns" in err
        path.write_text(path.read_text(encoding="utf-8-sig") + "9,a text,extra,fields\n", encoding="utf-8")
        code, _, err = run_cli(capsys, "predict", folder, "--file", path, "--text-col", "review")
        assert code == 2 and f"data.csv:{len(inputs) + 2} has more fields than the header" in err


@pytest.mark.parametrize("task", TASK_NAMES)
def test_adapt_evaluate_prints_the_tasks_metrics(task: str, trained_tasks, task_files: Path, capsys) -> None:
    """`adapt evaluate MODEL DATA`: one JSON line with the metrics tune() reports, scored on every row of DATA."""
    import math

    spec = get_task(task)
    _, folder = trained_tasks[task]
    code, out, err = run_cli(capsys, "evaluate", folder, task_files / DATA[task][0])
    assert code == 0, err[-3000:]
    assert out.count("\n") == 1, "progress goes to stderr"
    summary = json.loads(out)
    assert summary["task"] == task and summary["n"] > 0
    metrics = summary["metrics"]
    assert set(spec.metrics) <= set(metrics), (spec.metrics, metrics)
    assert all(math.isfinite(metrics[m]) for m in spec.metrics)
    if task == "sequence_classification":
        assert "report" in metrics and "majority_baseline" in metrics
    code, _, err = run_cli(capsys, "evaluate", folder, task_files / f"missing{Path(DATA[task][0]).suffix}")
    assert code == 2 and "does not exist" in err
