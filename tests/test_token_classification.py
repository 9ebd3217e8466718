"""NER: reading, alignment, windows, training with seqeval, EasyTokenTagger for HF and flair, long documents."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adapt import (
    EasyTokenTagger,
    InvalidInputError,
    TokenClassificationDatasets,
    UnknownLabelError,
    WrongTaskError,
)
from adapt.tasks.token_classification import TaggedWord, align_labels, group_entities, read_conll

TEXTS = ["I love London and Paris .", "Justin Bieber played a show in New York last night"]


# -- reading and alignment -------------------------------------------------------------------------------
def test_read_conll_whitespace_separators_and_columns(tmp_path):
    f = tmp_path / "x.conll"
    f.write_text("-DOCSTART- O\n\nJohn NNP B-per\nlives VBZ O\n\t\n  \nin IN O\nParis NNP B-loc\n\n\n")
    data = read_conll(f)
    assert data == {"tokens": [["John", "lives"], ["in", "Paris"]], "tags": [["B-per", "O"], ["O", "B-loc"]]}
    pos = read_conll(f, tag_col=1)
    assert pos["tags"][0] == ["NNP", "VBZ"]
    with pytest.raises(InvalidInputError, match="column"):
        read_conll(f, tag_col=5)


def test_align_labels_first_subword_and_all_subwords():
    # [CLS] new ##york is great [SEP]  -> words: 0 = "newyork" (2 pieces), 1 = "is", 2 = "great"
    word_ids = [None, 0, 0, 1, 2, None]
    tags = [0, 2, 2]  # B-LOC, O, O ; I-LOC = 1
    assert align_labels(word_ids, tags) == [-100, 0, -100, 2, 2, -100]
    assert align_labels(word_ids, tags, label_all_subwords=True, b_to_i={0: 1}) == [-100, 0, 1, 2, 2, -100]


def test_alignment_with_real_tokenizer_subwords_and_punctuation(model_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    words = ["@paulwalk", "visited", "Reykjavík", ",", "unbelievably", "!"]
    tags = [1, 0, 2, 0, 0, 0]
    enc = tok(words, is_split_into_words=True)
    labels = align_labels(enc.word_ids(), tags)
    firsts = [lab for lab in labels if lab != -100]
    assert firsts == tags  # exactly one labelled piece per word, in order
    assert len(enc["input_ids"]) > len(words) + 2  # several words split into sub-words


def test_group_entities_bio_and_bioes():
    def w(word, tag, start):
        return TaggedWord(word, start, start + len(word), tag, 0.5, [])

    text = "New York is big and Ada codes"
    words = [w("New", "B-loc", 0), w("York", "I-loc", 4), w("is", "O", 9), w("big", "O", 12), w("and", "O", 16),
             w("Ada", "S-per", 20), w("codes", "I-misc", 24)]
    ents = group_entities(text, words)
    assert [(e.text, e.label) for e in ents] == [("New York", "loc"), ("Ada", "per"), ("codes", "misc")]
    assert all(text[e.start:e.end] == e.text for e in ents)


def _tiny_df():
    return pd.DataFrame({"tokens": [["John", "lives", "in", "Paris"], ["Ada", "codes"], ["Bob", "is", "here"]] * 3,
                         "tags": [["B-per", "O", "O", "B-loc"], ["B-per", "O"], ["B-per", "O", "O"]] * 3})


def test_bad_rows_are_named(model_path):
    df = _tiny_df()
    df.at[4, "tags"] = ["B-per"]
    with pytest.raises(InvalidInputError, match="DataFrame index 4: 2 tokens but 1 tags"):
        TokenClassificationDatasets.from_dfs(df, "tokens", "tags", model_path, valid_df=_tiny_df())
    df = _tiny_df()
    df.at[2, "tokens"], df.at[2, "tags"] = [], []
    with pytest.raises(InvalidInputError, match="DataFrame index 2: an empty sentence"):
        TokenClassificationDatasets.from_dfs(df, "tokens", "tags", model_path, valid_df=_tiny_df())
    df.at[7, "tags"] = ["O"]
    bad_valid = _tiny_df().set_axis(range(50, 59))
    bad_valid.at[51, "tokens"] = ["Ada", " "]
    with pytest.raises(InvalidInputError, match=r"^3 bad row\(s\): DataFrame index 2: an empty sentence.*; DataFrame index 7: "
                       r"2 tokens but 1 tags \(they must match\); valid_df index 51: an empty, whitespace-only or non-string token: ' '"):
        TokenClassificationDatasets.from_dfs(df, "tokens", "tags", model_path, valid_df=bad_valid)
    valid = pd.DataFrame({"tokens": [["Rome"]], "tags": [["B-city"]]})
    with pytest.raises(UnknownLabelError, match="B-city"):
        TokenClassificationDatasets.from_dfs(_tiny_df(), "tokens", "tags", model_path, valid_df=valid)


def test_long_sentences_are_windowed_not_truncated(model_path):
    words = [f"w{i}" for i in range(300)]
    tags = ["B-per" if i % 10 == 0 else "O" for i in range(300)]
    df = pd.DataFrame({"tokens": [words, ["a", "b"]], "tags": [tags, ["O", "O"]]})
    d = TokenClassificationDatasets.from_dfs(df, "tokens", "tags", model_path, valid_df=df, tokenize_kwargs={"max_length": 64})
    assert d.vocab == ["B-per", "O"]
    rows = [r for r in d.raw.train if max(r["word_ids"]) > 2]
    assert len(rows) > 5 and all(len(r["input_ids"]) <= 64 for r in rows)
    labelled = [w for r in rows for w, lab in zip(r["word_ids"], r["labels"], strict=True) if lab != -100]
    assert sorted(labelled) == list(range(300))  # every word labelled in exactly one window: none dropped, none twice


def test_show_batch_shows_words_with_tags(model_path, capsys):
    d = TokenClassificationDatasets.from_dfs(_tiny_df(), "tokens", "tags", model_path, valid_df=_tiny_df())
    table = d.dataloaders(batch_size=4).batch_table(n=6, seed=0)
    assert all("[B-per]" in t for t in table["tagged words"])  # every row starts with a tagged person
    assert any("paris[B-loc]" in t for t in d.dataloaders().batch_table(n=9, seed=0)["tagged words"])
    x, y = d.dataloaders(batch_size=4).train.one_batch()
    assert x["input_ids"].shape == y.shape and (y == -100).any()  # labels padded with -100 per batch


# -- training and inference -------------------------------------------------------------------------------
def test_wnut_one_epoch_learns(ner_trained):
    tuner, metrics = ner_trained
    assert metrics["f1"] >= 0.15, metrics
    assert {"precision", "recall", "f1", "valid_loss"} <= set(metrics)
    ev = tuner.evaluate()
    assert ev["f1"] == pytest.approx(metrics["f1"], abs=1e-6)


def test_a_batch_with_no_word_to_tag_gives_a_zero_loss_not_nan(ner_trained):
    """Windows can hold only words an earlier window labelled; a batch of them must not make the weights NaN."""
    import pickle

    import torch

    tuner, _ = ner_trained
    loss_func = tuner.learn.loss_func
    logits = torch.randn(2, 5, len(tuner.classes), requires_grad=True)
    none = loss_func(logits, torch.full((2, 5), -100))
    none.backward()
    assert float(none) == 0.0 and torch.isfinite(logits.grad).all()
    some = torch.full((2, 5), -100)
    some[0, 1] = 1
    assert torch.isclose(loss_func(logits, some), torch.nn.functional.cross_entropy(logits[0, 1:2], some[0, 1:2]))
    loss_func.reduction = "none"  # fastai's get_preds(with_loss=True): one loss per token
    try:
        per_token = loss_func(logits, torch.full((2, 5), -100))
        assert per_token.shape == (10,) and torch.isfinite(per_token).all()
    finally:
        loss_func.reduction = "mean"
    assert type(pickle.loads(pickle.dumps(loss_func))).__name__ == "TagLoss"  # learn.export() pickles the loss


def test_offsets_round_trip_and_levels(ner_trained):
    tuner, _ = ner_trained
    out = tuner.predict(TEXTS, detail_level="high")
    json.dumps(out)
    assert out["sentences"] == TEXTS and len(out["entities"]) == 2
    assert any(out["entities"])
    for text, ents, toks in zip(out["sentences"], out["entities"], out["tokens"], strict=True):
        for e in ents:
            assert text[e["start"]:e["end"]] == e["text"] and "-" not in e["label"][:2]
            assert 0 < e["score"] <= 1
        for t in toks:
            assert text[t["start"]:t["end"]] == t["word"]
            assert abs(sum(t["scores"].values()) - 1) < 1e-4
    low = tuner.predict(TEXTS[0])
    assert set(low) == {"sentences", "entities", "tags"} and len(low["entities"]) == 1


def test_save_plain_transformers_and_easy_agree(ner_trained, tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tuner, _ = ner_trained
    saved = tuner.save(tmp_path / "ner")
    model = AutoModelForTokenClassification.from_pretrained(saved).eval()
    tok = AutoTokenizer.from_pretrained(saved)
    assert [model.config.id2label[i] for i in range(model.config.num_labels)] == tuner.classes
    enc = tok(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        pred = model(**enc).logits[0].argmax(-1).tolist()
    wids = enc.word_ids()
    plain = [model.config.id2label[pred[i]] for i, w in enumerate(wids) if w is not None and (i == 0 or wids[i - 1] != w)]
    easy = EasyTokenTagger().tag_text(TEXTS[1], saved, detail_level="medium")
    assert [t["tag"] for t in easy["tokens"][0]] == plain
    assert easy["entities"] == tuner.predict(TEXTS[1])["entities"]


def test_long_document_same_entities_in_every_repetition(ner_trained, wnut_path):
    tuner, _ = ner_trained
    # a tweet the model tags confidently (every word's tag probability is high) ...
    data = read_conll(wnut_path)
    cands = [" ".join(t) for t, g in zip(data["tokens"][:400], data["tags"][:400], strict=True)
             if any(x != "O" for x in g) and len(t) < 25]
    out = tuner.predict(cands, detail_level="medium")
    scored = sorted(((min(w["score"] for w in toks), s, ents)
                     for s, toks, ents in zip(out["sentences"], out["tokens"], out["entities"], strict=True) if ents), reverse=True)
    _, sentence, ents = scored[0]
    ref = [(e["label"], e["start"], e["end"]) for e in ents]
    # ... repeated far past token 512
    per_copy = len(tuner.tokenizer(sentence, add_special_tokens=False)["input_ids"])
    reps = 1600 // per_copy + 1
    doc = " ".join([sentence] * reps)
    assert len(tuner.tokenizer(doc)["input_ids"]) > 1500
    res = tuner.predict(doc, detail_level="high")
    assert res["windows"][0] > 10
    step = len(sentence) + 1
    per_rep: dict[int, list] = {}
    for e in res["entities"][0]:
        assert doc[e["start"]:e["end"]] == e["text"]
        r = e["start"] // step
        per_rep.setdefault(r, []).append((e["label"], e["start"] - r * step, e["end"] - r * step))
    assert len(per_rep) == reps and all(v == ref for v in per_rep.values())


def test_bad_input_and_wrong_task(ner_trained, model_path, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tuner, _ = ner_trained
    for bad in ["", "  ", None, [], ["ok", 3], [("a", "b")]]:
        with pytest.raises(InvalidInputError):
            tuner.predict(bad)
    cls_dir = tmp_path / "cls"
    AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2).save_pretrained(cls_dir)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(cls_dir)
    with pytest.raises(WrongTaskError, match="BertForSequenceClassification"):
        EasyTokenTagger().tag_text("hello", cls_dir)


# -- flair -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flair_tagger(wnut_path: Path, tmp_path_factory) -> Path:
    """A tiny flair SequenceTagger trained offline on WNUT sentences (one-hot embeddings, no RNN/CRF)."""
    import flair
    from flair.data import Corpus, Sentence
    from flair.datasets import FlairDatapointDataset
    from flair.embeddings import OneHotEmbeddings
    from flair.models import SequenceTagger
    from flair.trainers import ModelTrainer

    flair.set_seed(0)
    data = read_conll(wnut_path)
    sents = []
    for toks, tags in list(zip(data["tokens"], data["tags"], strict=True))[:300]:
        s = Sentence(toks)
        start = None
        for i, tag in enumerate([*tags, "O"]):  # BIO tags -> flair spans
            if start is not None and not tag.startswith("I-"):
                s[start:i].add_label("ner", tags[start][2:])
                start = None
            if tag.startswith("B-"):
                start = i
        sents.append(s)
    corpus = Corpus(FlairDatapointDataset(sents[:240]), FlairDatapointDataset(sents[240:270]),
                    FlairDatapointDataset(sents[270:]), sample_missing_splits=False)
    emb = OneHotEmbeddings.from_corpus(corpus, min_freq=1, embedding_length=32)
    tagger = SequenceTagger(hidden_size=32, embeddings=emb, tag_dictionary=corpus.make_label_dictionary("ner"),
                            tag_type="ner", use_crf=False, use_rnn=False, reproject_embeddings=False)
    out = tmp_path_factory.mktemp("flair_ner")
    ModelTrainer(tagger, corpus).train(out, max_epochs=5, learning_rate=0.1, mini_batch_size=32, save_final_model=True)
    return out / "final-model.pt"


def test_easy_runs_flair_sequence_tagger(flair_tagger):
    tagger = EasyTokenTagger(trust_pickle=True)  # a flair .pt is a pickle: our own file, trusted
    out = tagger.tag_text(TEXTS, flair_tagger, detail_level="high")
    json.dumps(out)
    assert out["sentences"] == TEXTS and len(out["tokens"]) == 2
    for text, toks, ents in zip(TEXTS, out["tokens"], out["entities"], strict=True):
        assert [text[t["start"]:t["end"]] for t in toks] == [t["word"] for t in toks]
        assert all(text[e["start"]:e["end"]] == e["text"] for e in ents)
        assert all(abs(sum(t["scores"].values()) - 1) < 1e-3 for t in toks)
    assert "O" in out["tokens"][0][0]["scores"]


def test_onnx_export_of_a_tagger(ner_trained, tmp_path):
    from adapt.ort import OnnxRuntimeModel

    tuner, _ = ner_trained
    out = tuner.export(tmp_path / "ner-onnx", onnx=True, quantize=False)  # optimized fp32 graph: per-word parity
    info = json.loads((out / "adapt.json").read_text())["onnx"]
    assert info["int8"] is False and info["agreement"] >= 0.99
    fast = EasyTokenTagger(precision="onnx")
    assert isinstance(fast.get_model(out).model, OnnxRuntimeModel)
    ref = EasyTokenTagger(precision="fp32").tag_text(TEXTS, out, detail_level="medium")
    got = fast.tag_text(TEXTS, out, detail_level="medium")
    assert [[t["tag"] for t in s] for s in got["tokens"]] == [[t["tag"] for t in s] for s in ref["tokens"]]
