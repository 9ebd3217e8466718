"""The Open Inference Protocol v2 (`adapt.serving.oip`) with the real `tritonclient.http` client over loopback HTTP.

Every answer is checked against the task's `Easy*` verb on the same inputs: a BBC classifier, a multi-label
classifier (sigmoid scores, decisions at its saved threshold) and every task's tiny trained model.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapt.tasks import get_task

from .contract_utils import INPUTS, TASK_NAMES, easy_call, json_close, server
from .serving_utils import http

TEXTS = ["Shares in the bank fell sharply after profits dropped", "The striker scored twice as the team won the match",
         "MPs voted on the budget bill late on Tuesday"]
PAIR = ("The new phone has a faster chip", "Reviewers liked the camera")
BBC = ["business", "entertainment", "politics", "sports", "tech"]


def _client(base: str) -> Any:
    import tritonclient.http as triton

    return triton.InferenceServerClient(url=base.removeprefix("http://"), network_timeout=120)


def _bytes_input(name: str, values: list[str], binary: bool = False) -> Any:
    import tritonclient.http as triton

    tensor = triton.InferInput(name, [len(values)], "BYTES")
    return tensor.set_data_from_numpy(np.array(values, dtype=np.object_), binary_data=binary)


def _inputs(items: list[Any], binary: bool = False) -> list[Any]:
    """Tensors for a list of items: strings (one `text` tensor), or objects (one tensor per field, "" for none)."""
    if all(isinstance(i, str) for i in items):
        return [_bytes_input("text", items, binary)]
    names = list(dict.fromkeys(k for item in items for k in (item if isinstance(item, dict) else {"text": item})))
    rows = [item if isinstance(item, dict) else {"text": item} for item in items]
    return [_bytes_input(n, [r.get(n, "") for r in rows], binary) for n in names]


def _infer(client: Any, name: str, items: list[Any], binary: bool = False, outputs: list[str] | None = None,
           **parameters: Any) -> Any:
    import tritonclient.http as triton

    wanted = [triton.InferRequestedOutput(o, binary_data=binary) for o in outputs] if outputs else None
    return client.infer(name, _inputs(items, binary), outputs=wanted, parameters=parameters or None)


def _strings(array: Any) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in array.reshape(-1)]


def _tensors(result: Any) -> dict[str, Any]:
    """Every output of an answer as plain Python data (BYTES as strings)."""
    out = {}
    for o in result.get_response()["outputs"]:
        array = result.as_numpy(o["name"])
        out[o["name"]] = _strings(array) if o["datatype"] == "BYTES" else array.tolist()
    return out


@pytest.fixture(scope="module")
def bbc(saved_dir: Path) -> Iterator[tuple[Any, str]]:
    with server(saved_dir) as base:
        client = _client(base)
        yield client, base
        client.close()


# ---------------------------------------------------------------------------------------------------
# health, metadata, readiness
# ---------------------------------------------------------------------------------------------------
def test_health_server_and_model_metadata(bbc) -> None:
    from tritonclient.utils import InferenceServerException

    from adapt import __version__

    client, base = bbc
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata() == {"name": "adapt", "version": __version__, "extensions": ["binary_tensor_data"]}
    assert client.is_model_ready("bbc") and client.is_model_ready("bbc", "1")
    assert not client.is_model_ready("bcc") and not client.is_model_ready("bbc", "2")
    meta = client.get_model_metadata("bbc")
    assert meta == client.get_model_metadata("bbc", "1")
    assert (meta["name"], meta["versions"], meta["platform"]) == ("bbc", ["1"], "adapt")
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                              {"name": "text_pair", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                               {"name": "score", "datatype": "FP32", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 5]},
                               {"name": "details", "datatype": "BYTES", "shape": [-1]}]
    params = meta["parameters"]
    assert params["task"] == "sequence_classification" and params["labels"] == BBC and params["optional_inputs"] == ["text_pair"]
    assert {"class_names", "threshold", "long_text", "detail_level"} <= set(params["options"])
    assert params["multi_label"] is False
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("bcc")
    assert e.value.status() == "404" and "choose one of ['bbc']" in e.value.message() and "Did you mean 'bbc'" in e.value.message()
    assert http("GET", f"{base}/v2/health/live") == (200, {"live": True})
    assert http("GET", f"{base}/v2/health/ready") == (200, {"ready": True})
    assert http("GET", f"{base}/v2/models/bbc/versions/7")[0] == 404


# ---------------------------------------------------------------------------------------------------
# a classifier: answers, options, outputs, errors
# ---------------------------------------------------------------------------------------------------
def _expected_classification(want: dict[str, Any]) -> dict[str, Any]:
    return {"label": want["predictions"], "score": [max(p) for p in want["probs"]], "probabilities": want["probs"]}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_a_classifier_answers_as_easy_does(bbc, saved_dir: Path, binary: bool) -> None:
    from adapt import EasySequenceClassifier

    client, _ = bbc
    items = [*TEXTS, {"text": PAIR[0], "text_pair": PAIR[1]}]
    want = EasySequenceClassifier().tag_text(items, saved_dir)
    got = _tensors(_infer(client, "bbc", items, binary, outputs=["label", "score", "probabilities"] if binary else None))
    assert set(got) == {"label", "score", "probabilities"}  # details only when asked for
    assert json_close(got, _expected_classification(want), 1e-4)
    # binary inputs (the binary tensor extension) and a gzip body give the same answer
    raw = client.infer("bbc", _inputs(TEXTS, binary=True), request_compression_algorithm="gzip")
    assert json_close(_tensors(raw)["label"], want["predictions"][:3])


def test_options_detail_level_and_outputs_through_parameters(bbc, saved_dir: Path) -> None:
    from adapt import EasySequenceClassifier

    client, base = bbc
    easy = EasySequenceClassifier()
    names = [n.upper() for n in BBC]
    result = _infer(client, "bbc", TEXTS, outputs=["label", "details"], class_names=names, detail_level="medium")
    got = _tensors(result)
    assert list(got) == ["label", "details"]
    assert got["label"] == easy.tag_text(TEXTS, saved_dir, class_names=names)["predictions"]
    for text, details in zip(TEXTS, got["details"], strict=True):
        assert json_close(json.loads(details), easy.tag_text([text], saved_dir, detail_level="medium", class_names=names))
    windowed = _tensors(_infer(client, "bbc", TEXTS[:1], long_text="window", max_length=16, stride=4))
    assert json_close(windowed, _expected_classification(
        easy.tag_text(TEXTS[:1], saved_dir, long_text="window", max_length=16, stride=4)))
    body = {"id": "req-7", "inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [[TEXTS[0]], [TEXTS[1]]]}],
            "outputs": [{"name": "label"}]}
    status, answer = http("POST", f"{base}/v2/models/bbc/versions/1/infer", body)
    assert status == 200 and answer["id"] == "req-7" and (answer["model_name"], answer["model_version"]) == ("bbc", "1")
    assert answer["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [2],
                                  "data": easy.tag_text(TEXTS[:2], saved_dir)["predictions"]}]


def test_refusals_have_the_protocols_shape_and_status(bbc) -> None:
    from tritonclient.utils import InferenceServerException

    client, base = bbc
    for call, status, words in [
        (lambda: _infer(client, "bbc", TEXTS, long_txt="window"), "400", "Did you mean 'long_text'?"),
        (lambda: _infer(client, "bbc", TEXTS, outputs=["lable"]), "400", "Did you mean 'label'?"),
        (lambda: _infer(client, "bcc", TEXTS), "404", "choose one of ['bbc']"),
        (lambda: client.infer("bbc", [_bytes_input("txt", TEXTS)]), "400", "Did you mean 'text'?"),
        (lambda: _infer(client, "bbc", ["fine", "   "]), "400", "texts[1]"),
        (lambda: _infer(client, "bbc", ["a"] * 257), "413", "max_texts=256"),
    ]:
        with pytest.raises(InferenceServerException) as e:
            call()
        assert e.value.status() == status and words in e.value.message(), (status, e.value.message())
    for body, words in [
        ({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["one"]}]}, "but 1 elements"),
        ({"inputs": [{"name": "text", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]}, "[n, 1]"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "INT64", "data": [3]}]}, "BYTES tensors"),
        ({"inputs": [{"name": "text_pair", "shape": [1], "datatype": "BYTES", "data": ["b"]}]}, "['text'] are missing"),
        ({"inputs": []}, "non-empty list"),
    ]:
        status, answer = http("POST", f"{base}/v2/models/bbc/infer", body)
        assert status == 400 and set(answer) == {"error"} and words in answer["error"], answer
    status, answer = http("POST", f"{base}/v2/models/bbc/infer", raw=b"{oops")
    assert status == 400 and "JSON" in answer["error"]
    status, answer = http("POST", f"{base}/v2/models/bbc/infer", raw=gzip.compress(b"x" * 3_000_000),
                          headers={"Content-Encoding": "gzip"})
    assert status == 413 and "max_body_bytes" in answer["error"]


# ---------------------------------------------------------------------------------------------------
# a multi-label classifier: sigmoid scores, decisions at the saved threshold
# ---------------------------------------------------------------------------------------------------
def test_a_multi_label_model_gives_sigmoid_scores_and_its_thresholded_decisions(multilabel, tmp_path: Path) -> None:
    from adapt import EasySequenceClassifier

    folder = multilabel.save(tmp_path / "multi")
    want = EasySequenceClassifier().tag_text(TEXTS, folder, detail_level="high")
    with server(folder) as base:
        client = _client(base)
        meta = client.get_model_metadata("multi")
        result = _infer(client, "multi", TEXTS, binary=True, outputs=["labels", "probabilities"])
        client.close()
    assert [o["name"] for o in meta["outputs"]] == ["labels", "probabilities", "details"]
    assert meta["parameters"]["multi_label"] is True and abs(meta["parameters"]["threshold"] - want["threshold"]) < 1e-6
    got = _tensors(result)
    sigmoid = (1 / (1 + np.exp(-np.array(want["logits"])))).tolist()
    assert json_close(got["probabilities"], want["probs"], 1e-4) and json_close(got["probabilities"], sigmoid, 1e-4)
    assert [json.loads(x) for x in got["labels"]] == want["predictions"]
    assert result.get_response()["parameters"] == {"threshold": pytest.approx(want["threshold"])}
    decided = [[c for c, p in zip(want["classes"], row, strict=True) if p >= want["threshold"]] for row in got["probabilities"]]
    assert decided == want["predictions"]


# ---------------------------------------------------------------------------------------------------
# a tagger and a reader trained on real data: entities and answers with character offsets
# ---------------------------------------------------------------------------------------------------
NER_TEXTS = ["Barack Obama visited Paris on Monday with Michelle", "I watched the new Star Wars film in London",
             "Microsoft and Google shares rose in New York"]


def test_a_tagger_gives_the_easy_entities_with_offsets(ner_trained, tmp_path: Path) -> None:
    from adapt import EasyTokenTagger

    folder = ner_trained[0].save(tmp_path / "wnut")
    want = EasyTokenTagger().tag_text(NER_TEXTS, folder)
    with server(folder) as base:
        client = _client(base)
        got = _tensors(_infer(client, "wnut", NER_TEXTS, binary=True))
        client.close()
    entities = [json.loads(x) for x in got["entities"]]
    assert list(got) == ["entities"] and json_close(entities, want["entities"], 1e-4)
    assert any(entities), "the tagger found no entity: this test proves little"
    assert all(text[e["start"]:e["end"]] == e["text"] for text, found in zip(NER_TEXTS, entities, strict=True) for e in found)


def test_a_reader_gives_the_easy_answers_with_offsets(qa_dir: Path, qa_df) -> None:
    from adapt import EasyQuestionAnswering

    rows = qa_df[qa_df.answers.map(lambda a: len(a["text"]) > 0)].iloc[:4]
    want = EasyQuestionAnswering().predict_qa(list(rows.question), list(rows.context), model_name_or_path=qa_dir)
    items = [{"question": q, "context": c} for q, c in zip(rows.question, rows.context, strict=True)]
    with server(qa_dir) as base:
        client = _client(base)
        got = _tensors(_infer(client, qa_dir.name, items, outputs=["answer", "score", "start", "end", "no_answer"]))
        client.close()
    assert json_close(got, _expected("question_answering", want), 1e-4)
    answered = [i for i, empty in enumerate(got["no_answer"]) if not empty]
    assert answered, "the reader answered nothing: this test proves little"
    assert all(items[i]["context"][got["start"][i]:got["end"][i]] == got["answer"][i] for i in answered)


# ---------------------------------------------------------------------------------------------------
# every task
# ---------------------------------------------------------------------------------------------------
def _expected(task: str, want: dict[str, Any]) -> dict[str, Any]:
    """The output tensors of `task` from its Easy JSON (low detail)."""
    if task in ("sequence_classification", "upper_case"):
        return _expected_classification(want)
    if task == "token_classification":
        return {"entities": want["entities"]}
    if task == "question_answering":
        answers = want["answers"]
        return {"answer": [a["answer"] for a in answers], "score": [a["score"] for a in answers],
                "start": [-1 if a["start"] is None else a["start"] for a in answers],
                "end": [-1 if a["end"] is None else a["end"] for a in answers], "no_answer": [a["no_answer"] for a in answers]}
    if task == "masked_language_modeling":
        return {"filled": want["filled"], "predictions": want["predictions"]}
    key = {"language_modeling": "generated_text", "summarization": "summaries", "translation": "translations"}[task]
    return {"generated_text": want[key]}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_task_answers_as_easy_does(task: str, trained_tasks) -> None:
    _, folder = trained_tasks[task]
    spec = get_task(task)
    easy = spec.easy()
    inputs = INPUTS[task]
    want = easy_call(spec, easy, inputs, folder, "low")
    with server(folder) as base:
        client = _client(base)
        meta = client.get_model_metadata(task)
        got = _tensors(_infer(client, task, inputs, binary=task != "question_answering"))
        details = _tensors(_infer(client, task, inputs, outputs=["details"], detail_level="medium"))["details"]
        client.close()
    assert [f["name"] for f in meta["inputs"]] == [f.name for f in spec.fields]
    assert [o["name"] for o in meta["outputs"]] == [*_expected(task, want), "details"]
    json_fields = {"entities", "predictions"}
    got = {k: [json.loads(x) for x in v] if k in json_fields else v for k, v in got.items()}
    assert json_close(got, _expected(task, want), 1e-4), (got, want)
    for item, row in zip(inputs, details, strict=True):
        assert json_close(json.loads(row), easy_call(spec, easy, [item], folder, "medium"), 1e-4)
