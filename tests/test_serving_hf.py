"""Hugging Face task JSON (`adapt.serving.hf_api`): `POST /` and `POST /models/{name}` called with the real
`huggingface_hub.InferenceClient` over loopback HTTP.

Every task's answer equals its Easy verb's for the same input, turned into the Hugging Face spec's shape here, by the
test itself; the spec's parameters (top_k, function_to_apply, aggregation_strategy, max_new_tokens, ...) map onto
adapt's options, adapt's own options stay available, and a misspelled parameter is a 400 naming the right one.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from huggingface_hub import InferenceClient, configure_http_backend
from huggingface_hub.errors import HfHubHTTPError
from requests.adapters import HTTPAdapter

from adapt.tasks import get_task

from .contract_utils import INPUTS, easy_call, json_close, server
from .serving_utils import http

TEXT = "Shares fell sharply after the profit warning"


class _NoNetwork(HTTPAdapter):
    """What huggingface_hub's offline mode does, for every address but loopback."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError(f"the tests reach loopback only, not {request.url}")


def _loopback_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _NoNetwork())
    session.mount("https://", _NoNetwork())
    session.mount("http://127.0.0.1:", HTTPAdapter())
    return session


@pytest.fixture(scope="module", autouse=True)
def loopback() -> Iterator[None]:
    """huggingface_hub's offline mode (HF_HUB_OFFLINE=1) refuses every address, loopback too: let loopback through."""
    configure_http_backend(backend_factory=_loopback_session)
    yield
    configure_http_backend()


def _easy(task: str, folder: Path, inputs: list[Any], level: str = "low", **options: Any) -> dict[str, Any]:
    spec = get_task(task)
    return easy_call(spec, spec.easy(), inputs, folder, level, **options)


def _plain(elements: Any) -> Any:
    """The client's parsed answer as plain JSON (its dataclasses are dicts; fields the server did not send are None)."""
    if isinstance(elements, list):
        return [_plain(e) for e in elements]
    return {k: v for k, v in dict(elements).items() if v is not None}


def _ranked(pairing: dict[str, float], **extra: Any) -> list[dict[str, Any]]:
    return [{"label": label, "score": score, **extra} for label, score in sorted(pairing.items(), key=lambda p: -p[1])]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _refused(method: Any, *args: Any, **kwargs: Any) -> str:
    """The error message of a client call the server refuses with a 400."""
    with pytest.raises(HfHubHTTPError) as caught:
        method(*args, **kwargs)
    response = caught.value.response
    assert response is not None and response.status_code == 400, response
    body = response.json()
    assert body["error_type"] == "validation", body
    return str(body["error"])


# ---------------------------------------------------------------------------------------------------
# text classification
# ---------------------------------------------------------------------------------------------------
def test_text_classification_answers_as_easy_with_the_specs_parameters(saved_dir: Path) -> None:
    pair = {"text": "The striker scored twice", "text_pair": "a late goal won the cup"}
    want = _easy("sequence_classification", saved_dir, [TEXT, pair], "high")
    logits = dict(zip(want["classes"], want["logits"][0], strict=True))
    with server(saved_dir) as url:
        client = InferenceClient(model=url)
        assert json_close(_plain(client.text_classification(TEXT)), _ranked(want["pairings"][0]))
        assert json_close(_plain(client.text_classification(TEXT, top_k=2)), _ranked(want["pairings"][0])[:2])
        assert json_close(_plain(client.text_classification(TEXT, function_to_apply="none")), _ranked(logits))
        sigmoid = {label: _sigmoid(x) for label, x in logits.items()}
        assert json_close(_plain(client.text_classification(TEXT, function_to_apply="sigmoid")), _ranked(sigmoid))
        # a list of inputs (a text pair among them): a list of answers; adapt's options by adapt's names
        status, body = http("POST", f"{url}/", {"inputs": [TEXT, pair]})
        assert status == 200 and json_close(body, [_ranked(p) for p in want["pairings"]]), body
        windowed = _easy("sequence_classification", saved_dir, [TEXT], "medium", long_text="window", max_length=8)
        status, body = http("POST", url, {"inputs": TEXT, "parameters": {"long_text": "window", "max_length": 8}})
        assert status == 200 and json_close(body, [_ranked(windowed["pairings"][0])]), body
        message = _refused(client.text_classification, TEXT, function_to_apply="softmx")
        assert "softmax" in message
        status, body = http("POST", url, {"inputs": TEXT, "parameters": {"top_kk": 2}})
        assert status == 400 and "Did you mean 'top_k'?" in body["error"] and body["error_type"] == "validation", body
        status, body = http("POST", url, {"inputs": {"question": "Who?", "context": "Smith."}})
        assert status == 400 and '{"text": ..., "text_pair": ...}' in body["error"], body


def test_a_multi_label_model_answers_sigmoid_scores_and_its_threshold(multilabel, tmp_path: Path) -> None:
    folder = multilabel.save(tmp_path / "multi")
    want = _easy("sequence_classification", folder, [TEXT], "high")
    assert want["multi_label"] and want["threshold"] == multilabel.threshold
    with server(folder) as url:
        client = InferenceClient(model=url)
        got = _plain(client.text_classification(TEXT))
        assert json_close(got, _ranked(want["pairings"][0], threshold=multilabel.threshold))
        logits = dict(zip(want["classes"], want["logits"][0], strict=True))
        assert json_close(got, _ranked({label: _sigmoid(x) for label, x in logits.items()}, threshold=multilabel.threshold))
        assert sum(e["score"] for e in got) != pytest.approx(1.0)  # not a softmax
        assert "sigmoid" in _refused(client.text_classification, TEXT, function_to_apply="softmax")
        status, body = http("POST", url, {"inputs": TEXT, "parameters": {"threshold": 0.25}})  # adapt's option
    assert status == 200 and {e["threshold"] for e in body[0]} == {0.25}, body


# ---------------------------------------------------------------------------------------------------
# every other task, with the tiny trained models
# ---------------------------------------------------------------------------------------------------
def _entities(easy: dict[str, Any], key: str = "entity_group") -> list[dict[str, Any]]:
    return [{key: e["label"], "score": e["score"], "word": e["text"], "start": e["start"], "end": e["end"]}
            for e in easy["entities"][0]]


@pytest.fixture(scope="module")
def tagger_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT trained a few seconds to tag people and places in templated sentences (the contract's tiny
    tagger learns only 'O'); its BBC word pieces split some names, so the aggregation strategies matter."""
    import random

    import pandas as pd

    from adapt import TokenClassificationDatasets, TokenClassificationTuner, set_seed

    rng = random.Random(0)
    rows = []
    for _ in range(120):
        person, place, day = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(["Monday", "Tuesday", "Friday"])
        if rng.random() < 0.5:
            rows.append({"tokens": ["Barack", person, "visited", place, "on", day],
                         "tags": ["B-PER", "I-PER", "O", "B-LOC", "O", "O"]})
        else:
            rows.append({"tokens": [person, "flew", "to", place, "on", day], "tags": ["B-PER", "O", "O", "B-LOC", "O", "O"]})
    set_seed(0)
    dsets = TokenClassificationDatasets.from_dfs(pd.DataFrame(rows), tokenizer_name=str(tiny_bert_dir), max_length=16)
    tuner = TokenClassificationTuner(dsets.dataloaders(batch_size=16), str(tiny_bert_dir))
    tuner.tune(3, lr=1e-2)
    return tuner.save(tmp_path_factory.mktemp("tagger") / "tagger")


PEOPLE = ["Obama", "Smith", "Kowalczyk", "Brown", "Oyelaran"]
PLACES = ["Paris", "London", "Kalamazoo", "Madrid", "Rome"]
NER_TEXT = "Barack Kowalczyk visited Kalamazoo on Monday"


def test_token_classification_maps_aggregation_strategy_and_ignore_labels(tagger_dir: Path) -> None:
    folder, text = tagger_dir, NER_TEXT
    with server(folder) as url:
        client = InferenceClient(model=url)
        for strategy in ("first", "max", "average", "simple"):
            want = _entities(_easy("token_classification", folder, [text], aggregation_strategy=strategy))
            assert json_close(_plain(client.token_classification(text, aggregation_strategy=strategy)), want), strategy
        want = _entities(_easy("token_classification", folder, [text], aggregation_strategy="none"), "entity")
        assert want, "the tiny tagger tags nothing: the test would compare empty lists"
        assert json_close(_plain(client.token_classification(text, aggregation_strategy="none")), want)
        dropped = want[0]["entity"]
        got = _plain(client.token_classification(text, aggregation_strategy="none", ignore_labels=[dropped]))
        assert json_close(got, [e for e in want if e["entity"] != dropped])
        assert "first" in _refused(client.token_classification, text, aggregation_strategy="firts")


def test_question_answering_answers_as_easy(trained_tasks) -> None:
    folder = trained_tasks["question_answering"][1]
    item = INPUTS["question_answering"][0]
    want = _easy("question_answering", folder, [item], "medium", n_best_size=20)
    best = want["answers"][0]
    spans = [{"answer": "", "score": best["score"], "start": 0, "end": 0}] if best["no_answer"] else []
    spans += [{"answer": a["answer"], "score": a["score"], "start": a["start"], "end": a["end"]} for a in want["best_n"][0]]
    with server(folder) as url:
        client = InferenceClient(model=url)
        assert json_close(_plain(client.question_answering(**item)), spans[0])
        assert json_close(_plain(client.question_answering(**item, top_k=3)), spans[:3])
        # the spec's names of adapt's options: handle_impossible_answer, max_answer_len
        short = _easy("question_answering", folder, [item], allow_no_answer=False, max_answer_length=3)["answers"][0]
        got = _plain(client.question_answering(**item, handle_impossible_answer=False, max_answer_len=3))
        assert json_close(got, {k: short[k] for k in ("answer", "score", "start", "end")}) and short["answer"]
        assert "doc_stride" in _refused(client.question_answering, **item, doc_stride=8)
        status, body = http("POST", url, {"inputs": TEXT})
    assert status == 400 and '{"question": ..., "context": ...}' in body["error"], body


def test_summarization_translation_and_fill_mask_answer_as_easy(trained_tasks) -> None:
    for task, method, key in (("summarization", "summarization", "summary_text"),
                              ("translation", "translation", "translation_text")):
        folder, text = trained_tasks[task][1], INPUTS[task][0]
        output = "summaries" if task == "summarization" else "translations"
        # min_new_tokens (adapt's, passed on) makes the tiny models write something: they learned to stop at once
        want = _easy(task, folder, INPUTS[task], num_tokens_to_produce=6, min_new_tokens=6)[output]
        with server(folder) as url:
            client = InferenceClient(model=url)
            got = getattr(client, method)(text, generate_parameters={"max_new_tokens": 6, "min_new_tokens": 6})
            status, body = http("POST", url, {"inputs": INPUTS[task], "parameters": {"max_new_tokens": 6, "min_new_tokens": 6}})
            assert "truncation" in _refused(getattr(client, method), text, truncation="only_first")
        assert getattr(got, key) == want[0] and want[0]
        assert status == 200 and body == [{key: o} for o in want], body
    folder, text = trained_tasks["masked_language_modeling"][1], INPUTS["masked_language_modeling"][0]
    want = _easy("masked_language_modeling", folder, [text], "medium", top_k=3)["predictions"][0][0]
    with server(folder) as url:
        got = _plain(InferenceClient(model=url).fill_mask(text, top_k=3))
        assert "targets" in _refused(InferenceClient(model=url).fill_mask, text, targets=["rose"])
    assert json_close(got, [{"score": c["score"], "token": c["token_id"], "token_str": c["token"], "sequence": c["sequence"]}
                            for c in want])


def test_text_generation_maps_max_new_tokens_and_sampling(trained_tasks) -> None:
    folder, prompt = trained_tasks["language_modeling"][1], INPUTS["language_modeling"][0]
    greedy = _easy("language_modeling", folder, [prompt], "medium", num_tokens_to_produce=5)
    sampled = _easy("language_modeling", folder, [prompt], num_tokens_to_produce=5, do_sample=True, seed=3, top_k=5)
    with server(folder) as url:
        client = InferenceClient(model=url)
        assert client.text_generation(prompt, max_new_tokens=5) == greedy["generated_text"][0]
        assert client.text_generation(prompt, max_new_tokens=5, return_full_text=False) == greedy["continuations"][0]
        got = client.text_generation(prompt, max_new_tokens=5, do_sample=True, seed=3, top_k=5)
        assert got == sampled["generated_text"][0]
        with pytest.warns(UserWarning, match="watermark"):  # a TGI parameter: the client retries without it
            assert client.text_generation(prompt, max_new_tokens=5, watermark=True) == greedy["generated_text"][0]
        status, body = http("POST", url, {"inputs": [prompt, ""], "parameters": {"max_new_tokens": 5}})
        assert status == 200 and body == [[{"generated_text": t}] for t in _easy(
            "language_modeling", folder, [prompt, ""], num_tokens_to_produce=5)["generated_text"]], body
        misspelled = [http("POST", url, {"inputs": prompt, "parameters": {"max_new_token": 5}}),
                      http("POST", url, {"input": prompt})]
    assert [status for status, _ in misspelled] == [400, 400], misspelled
    assert "Did you mean 'max_new_tokens'?" in misspelled[0][1]["error"] and "Did you mean 'inputs'?" in misspelled[1][1]["error"]


def test_feature_extraction_answers_tei_vectors(model_path: str) -> None:
    from adapt.sentence_embeddings import EasySentenceEmbeddings

    texts = [TEXT, "The striker scored twice"]
    easy = EasySentenceEmbeddings()
    with server(Path(model_path)) as url:
        client = InferenceClient(model=url)
        got = client.feature_extraction(TEXT)
        assert got.shape == (1, 384) and json_close(got.tolist(), easy.embed([TEXT], model_path)["embeddings"])
        raw = client.feature_extraction(TEXT, normalize=False).tolist()
        assert json_close(raw, easy.embed([TEXT], model_path, normalize=False)["embeddings"])
        status, body = http("POST", url, {"inputs": texts, "normalize": True})
        assert status == 200 and json_close(body, easy.embed(texts, model_path, normalize=True)["embeddings"])
        status, body = http("POST", url, {"inputs": "the market rose " * 400, "truncate": False})
    assert status == 413 and "truncate" in body["error"], body


# ---------------------------------------------------------------------------------------------------
# several models: /models/{name}
# ---------------------------------------------------------------------------------------------------
def test_models_name_reaches_each_served_model_and_an_unknown_name_is_404(trained_tasks, tagger_dir: Path) -> None:
    from adapt.modelio import read_manifest
    from adapt.serving.served import Served

    cls_folder, ner_folder = trained_tasks["sequence_classification"][1], tagger_dir
    spec = get_task("token_classification")

    def with_tagger(app: Any) -> None:  # a second model beside the folder's, as adapters are served
        models = app.state.models
        tagger = Served("tagger", spec.easy().get_model(ner_folder), read_manifest(ner_folder), str(ner_folder), spec)
        models.install({**models.models, "tagger": tagger})

    text = NER_TEXT
    want = _easy("sequence_classification", cls_folder, [TEXT], "medium")
    with server(cls_folder, hook=with_tagger) as url:
        tags = _plain(InferenceClient(model=f"{url}/models/tagger").token_classification(text, aggregation_strategy="none"))
        labels = _plain(InferenceClient(model=f"{url}/models/{cls_folder.name}").text_classification(TEXT))
        several = http("POST", url, {"inputs": TEXT})
        unknown = http("POST", f"{url}/models/taggr", {"inputs": text})
        metrics = http("GET", f"{url}/metrics")[1]
    assert json_close(tags, _entities(_easy("token_classification", ner_folder, [text], aggregation_strategy="none"), "entity"))
    assert json_close(labels, _ranked(want["pairings"][0]))
    assert several[0] == 400 and "tagger" in several[1]["error"] and cls_folder.name in several[1]["error"]
    assert unknown[0] == 404 and unknown[1]["error_type"] == "not_found"
    assert "Did you mean 'tagger'?" in unknown[1]["error"] and cls_folder.name in unknown[1]["error"]
    assert 'adapt_requests_total{model="tagger",path="/models/{name}",status="200"} 1.0' in metrics
