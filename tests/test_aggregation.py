"""Token-classification `aggregation_strategy` (first, max, average, simple, none) through every door.

The tagger is built by hand, not trained: a BERT with no transformer layer whose word embeddings hold, for a few
sub-words of the real MiniLM tokenizer, chosen tag probabilities that its classifier reads out unchanged (every
other token is tagged O). "Kalamazoo" is three sub-words (kala ##ma ##zoo) whose tags disagree, so the
strategies give different, known entities:

| sub-word | best tag    | other tags                      |
|----------|-------------|---------------------------------|
| anna     | B-PER 0.99  |                                 |
| kala     | I-PER 0.50  | I-ORG 0.45, O 0.05              |
| ##ma     | I-LOC 0.96  | O 0.04                          |
| ##zoo    | I-ORG 0.90  | O 0.10                          |

first: Kalamazoo is I-PER and continues Anna (one PER entity); max: I-LOC (##ma's 0.96 is the highest score);
average: I-ORG ((0.45 + 0 + 0.90) / 3 = 0.45 beats I-LOC's 0.32 and I-PER's 0.17); simple: each sub-word keeps
its own tag (PER "Anna Kala", LOC "ma", ORG "zoo"); none: the four sub-words, ungrouped, with their full tags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

LABELS = ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]  # sorted, as a tuner's vocabulary is
FLOOR = 1e-4  # every tag not named below
DESIGN = {  # sub-word -> its chosen tag probabilities
    "anna": {"B-PER": 0.99},
    "kala": {"I-PER": 0.50, "I-ORG": 0.45, "O": 0.05},
    "##ma": {"I-LOC": 0.96, "O": 0.04},
    "##zoo": {"I-ORG": 0.90, "O": 0.10},
}
TEXT = "Yesterday Anna Kalamazoo arrived."
ANNA, KALAMAZOO = (10, 14), (15, 24)
SCALE = 10.0  # logits = SCALE * embedding components


def _probs(named: dict[str, float]) -> np.ndarray:
    p = np.array([named.get(t, FLOOR) for t in LABELS])
    return p / p.sum()


def _embedding(p: np.ndarray) -> np.ndarray:
    """[z, -z, c, -c] with z = log(p) / SCALE: mean 0 and variance 1, so the embedding LayerNorm leaves it as it is."""
    z = np.log(p) / SCALE
    c = np.sqrt(len(z) + 1 - (z**2).sum())
    return np.concatenate([z, -z, [c, -c]])


@pytest.fixture(scope="module")
def tagger_dir(model_path: str, tmp_path_factory) -> Path:
    """A saved transformers token classifier whose per-sub-word tag probabilities are `DESIGN` (O elsewhere)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(model_path)
    n = len(LABELS)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=2 * n + 2, num_hidden_layers=0, num_attention_heads=1, intermediate_size=4,
        max_position_embeddings=512, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=n,
        id2label=dict(enumerate(LABELS)), label2id={t: i for i, t in enumerate(LABELS)},
    )
    model = BertForTokenClassification(config).eval()
    emb = np.tile(_embedding(_probs({"O": 0.999})), (len(tok), 1))
    for piece, named in DESIGN.items():
        emb[tok.convert_tokens_to_ids(piece)] = _embedding(_probs(named))
    with torch.no_grad():
        bert = model.bert.embeddings
        bert.word_embeddings.weight.copy_(torch.tensor(emb, dtype=torch.float32))
        bert.position_embeddings.weight.zero_()
        bert.token_type_embeddings.weight.zero_()
        bert.LayerNorm.weight.fill_(1.0)
        bert.LayerNorm.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.weight[:, :n] = torch.eye(n) * SCALE
        model.classifier.bias.zero_()
    out = tmp_path_factory.mktemp("aggregation") / "tagger"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _entity(span: tuple[int, int], label: str, score: float, text: str = TEXT) -> dict[str, Any]:
    return {"text": text[span[0]:span[1]], "label": label, "score": pytest.approx(score, abs=1e-5),
            "start": span[0], "end": span[1]}


P = {piece: _probs(named) for piece, named in DESIGN.items()}
IDX = {t: i for i, t in enumerate(LABELS)}
AVERAGE = (P["kala"] + P["##ma"] + P["##zoo"]) / 3
KALA, MA, ZOO = (15, 19), (19, 21), (21, 24)
EXPECTED = {
    "first": [_entity((ANNA[0], KALAMAZOO[1]), "PER", (P["anna"][IDX["B-PER"]] + P["kala"][IDX["I-PER"]]) / 2)],
    "max": [_entity(ANNA, "PER", P["anna"][IDX["B-PER"]]), _entity(KALAMAZOO, "LOC", P["##ma"][IDX["I-LOC"]])],
    "average": [_entity(ANNA, "PER", P["anna"][IDX["B-PER"]]), _entity(KALAMAZOO, "ORG", AVERAGE[IDX["I-ORG"]])],
    "simple": [
        _entity((ANNA[0], KALA[1]), "PER", (P["anna"][IDX["B-PER"]] + P["kala"][IDX["I-PER"]]) / 2),
        _entity(MA, "LOC", P["##ma"][IDX["I-LOC"]]),
        _entity(ZOO, "ORG", P["##zoo"][IDX["I-ORG"]]),
    ],
    "none": [
        _entity(ANNA, "B-PER", P["anna"][IDX["B-PER"]]),
        _entity(KALA, "I-PER", P["kala"][IDX["I-PER"]]),
        _entity(MA, "I-LOC", P["##ma"][IDX["I-LOC"]]),
        _entity(ZOO, "I-ORG", P["##zoo"][IDX["I-ORG"]]),
    ],
}
WORDS = ["Yesterday", "Anna", "Kalamazoo", "arrived", "."]
SUB_WORDS = ["Yesterday", "Anna", "Kala", "ma", "zoo", "arrived", "."]


@pytest.fixture(scope="module")
def easy():
    from adapt import EasyTokenTagger

    return EasyTokenTagger()


def test_the_design_holds(model_path):
    """The word really is three sub-words, and the strategies' expectations really differ."""
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(model_path).tokenize(TEXT) == ["yesterday", "anna", "kala", "##ma", "##zoo",
                                                                        "arrived", "."]
    assert LABELS[int(AVERAGE.argmax())] == "I-ORG" and AVERAGE.max() == pytest.approx(0.45, abs=1e-3)
    labels = {s: [(e["label"], e["start"], e["end"]) for e in EXPECTED[s]] for s in EXPECTED}
    assert len({json.dumps(v) for v in labels.values()}) == len(EXPECTED)


@pytest.mark.parametrize("strategy", list(EXPECTED))
def test_each_strategy_gives_its_documented_entities_at_exact_offsets(easy, tagger_dir, strategy):
    out = easy.tag_text(TEXT, tagger_dir, detail_level="high", aggregation_strategy=strategy)
    entities = out["entities"][0]
    assert entities == EXPECTED[strategy]
    for e in entities:
        assert TEXT[e["start"]:e["end"]] == e["text"]
    tokens = out["tokens"][0]
    assert [t["word"] for t in tokens] == (SUB_WORDS if strategy in ("none", "simple") else WORDS)
    for t in tokens:
        assert TEXT[t["start"]:t["end"]] == t["word"] and max(t["scores"].values()) == pytest.approx(t["score"])
    if strategy in ("first", "max", "average"):
        word = tokens[2]  # Kalamazoo: its probabilities are the strategy's
        chosen = {"first": P["kala"], "max": P["##ma"], "average": AVERAGE}[strategy]
        assert [word["scores"][t] for t in LABELS] == pytest.approx(list(chosen), abs=1e-5)


def test_first_is_the_default_and_names_are_forgiving(easy, tagger_dir):
    from adapt import AggregationStrategy

    default = easy.tag_text(TEXT, tagger_dir, detail_level="medium")
    assert default == easy.tag_text(TEXT, tagger_dir, detail_level="medium", aggregation_strategy="first")
    assert default["entities"][0] == EXPECTED["first"]
    for spelling in ("MAX", AggregationStrategy.Max, "Max"):
        assert easy.tag_text(TEXT, tagger_dir, aggregation_strategy=spelling)["entities"][0] == EXPECTED["max"]
    assert easy.tag_text(TEXT, tagger_dir, aggregation_strategy="per_token")["entities"][0] == EXPECTED["none"]


@pytest.mark.parametrize("strategy", list(EXPECTED))
def test_long_texts_in_small_windows_give_the_same_entities(easy, tagger_dir, strategy):
    """Windows of 8 tokens cut through Kalamazoo; each sub-word still comes from one window, so every repetition
    of the sentence gets the entities of the sentence alone, at its own offsets."""
    n = 6
    text = " ".join([TEXT] * n)
    out = easy.tag_text(text, tagger_dir, max_length=8, stride=2, aggregation_strategy=strategy, detail_level="high")
    assert out["windows"][0] > n
    step = len(TEXT) + 1
    want = [{**e, "start": e["start"] + k * step, "end": e["end"] + k * step} for k in range(n) for e in EXPECTED[strategy]]
    assert out["entities"][0] == want
    assert all(text[e["start"]:e["end"]] == e["text"] for e in out["entities"][0])


def test_a_bad_strategy_is_refused_with_the_choices_before_any_model_loads(easy, tmp_path):
    from adapt.errors import InvalidChoiceError

    with pytest.raises(InvalidChoiceError) as e:
        easy.tag_text(TEXT, tmp_path / "no-such-model", aggregation_strategy="maxx")
    message = str(e.value)
    assert "'maxx' is not a valid AggregationStrategy. Did you mean 'Max'?" in message
    for value in ("'none'", "'simple'", "'first'", "'average'", "'max'"):
        assert value in message


def test_tuner_predict_takes_the_option(tagger_dir, easy):
    import pandas as pd

    from adapt import TokenClassificationDatasets, TokenClassificationTuner

    df = pd.DataFrame({"tokens": [["Anna", "Kalamazoo", "in", "Oslo", "Corp"]] * 2,
                       "tags": [["B-PER", "I-PER", "O", "B-LOC", "B-ORG"], ["B-PER", "I-PER", "I-LOC", "I-ORG", "O"]]})
    dsets = TokenClassificationDatasets.from_dfs(df, "tokens", "tags", str(tagger_dir), valid_df=df)
    tuner = TokenClassificationTuner(dsets.dataloaders(batch_size=2), str(tagger_dir))
    assert tuner.classes == LABELS
    for strategy in ("max", "average", "none"):
        got = tuner.predict(TEXT, detail_level="medium", aggregation_strategy=strategy)
        assert got == easy.tag_text(TEXT, tagger_dir, detail_level="medium", aggregation_strategy=strategy)
        assert got["entities"][0] == EXPECTED[strategy]


def test_cli_param_and_refusal(tagger_dir, easy, capsys):
    from .contract_utils import run_cli

    for strategy in ("max", "average"):
        code, out, err = run_cli(capsys, "predict", tagger_dir, TEXT, "--param", f"aggregation_strategy={strategy}")
        assert code == 0, err
        assert json.loads(out) == easy.tag_text(TEXT, tagger_dir, aggregation_strategy=strategy)
        assert json.loads(out)["entities"][0] == EXPECTED[strategy]
    code, _, err = run_cli(capsys, "predict", tagger_dir, TEXT, "--param", "aggregation_strategy=avg")
    assert code == 2 and err.startswith("adapt: error: ") and err.count("\n") == 1
    assert "'avg' is not a valid AggregationStrategy" in err and "'average'" in err


def test_rest_parameter_metadata_and_refusal(tagger_dir, easy):
    from fastapi.testclient import TestClient

    from adapt.serving.app import ServerConfig, create_app

    with TestClient(create_app(ServerConfig(str(tagger_dir)))) as client:
        declared = client.get("/metadata").json()["parameters"]["aggregation_strategy"]
        assert declared["default"] == "first" and "average" in declared["help"]
        for strategy in ("average", "none", "max"):
            r = client.post("/predict", json={"texts": [TEXT, TEXT], "parameters": {"aggregation_strategy": strategy}})
            assert r.status_code == 200, r.text
            assert r.json() == easy.tag_text([TEXT, TEXT], tagger_dir, aggregation_strategy=strategy)
            assert r.json()["entities"] == [EXPECTED[strategy]] * 2
        r = client.post("/predict", json={"texts": [TEXT], "parameters": {"aggregation_strategy": "frist"}})
        assert r.status_code == 422 and "Did you mean 'First'?" in r.json()["detail"] and "'average'" in r.json()["detail"]
