"""Summarization and translation: metrics, learning, Easy modules, plain-transformers reload and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adapt import (
    EasySummarizer,
    EasyTranslator,
    InvalidInputError,
    MissingColumnError,
    SummarizationDatasets,
    TranslationDatasets,
    TranslationTuner,
    WrongTaskError,
)
from adapt.tasks.summarization import rouge_scores
from adapt.tasks.translation import bleu_score


def test_rouge_and_bleu_come_from_their_packages():
    import sacrebleu

    assert rouge_scores(["the cat sat on the mat"], ["the cat sat on the mat"]) == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    assert rouge_scores(["dogs bark"], ["the cat sat"])["rouge1"] == 0.0
    # unigrams {cats, sat}: stemmed "cats" matches "cat": P = 2/2, R = 2/3 -> F = 0.8
    assert rouge_scores(["cats sat"], ["the cat sat"])["rouge1"] == pytest.approx(80.0)
    preds, refs = ["the market rose on monday", "shares fell"], ["the market rose on tuesday", "shares fell sharply"]
    assert bleu_score(preds, refs)["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    assert bleu_score(["a b c d"], ["a b c d"])["bleu"] == pytest.approx(100.0)
    with pytest.raises(InvalidInputError):
        bleu_score(["a"], [])


# -- learning ----------------------------------------------------------------------------------------
def test_translation_bleu_rises_above_a_clear_threshold(translation_trained):
    tuner, before, after = translation_trained
    assert before["bleu"] < 1.0
    assert after["bleu"] > 30.0, (before, after)
    assert after["valid_loss"] < before["valid_loss"] - 3
    assert "bleu" in tuner.history()[-1]


def test_summarization_loss_falls_and_rouge_improves(summarization_trained):
    tuner, before, after = summarization_trained
    assert after["valid_loss"] < before["valid_loss"] - 1.0, (before, after)
    assert after["rouge1"] > before["rouge1"] + 3, (before, after)
    assert {"rouge1", "rouge2", "rougeL"} <= set(tuner.history()[-1])


# -- inference ---------------------------------------------------------------------------------------
def test_easy_translator_batches_and_matches_plain_transformers(translation_dir: Path, cipher_df):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    texts = list(cipher_df.source[-6:])
    tr = EasyTranslator()
    out = tr.translate(texts, translation_dir, mini_batch_size=4)
    assert set(out) == {"sentences", "translations"} and out["sentences"] == texts
    assert [tr.translate(t, translation_dir)["translations"][0] for t in texts] == out["translations"]
    model = AutoModelForSeq2SeqLM.from_pretrained(translation_dir).eval()
    tok = AutoTokenizer.from_pretrained(translation_dir)
    with torch.no_grad():
        ids = model.generate(**tok(texts[:1], return_tensors="pt"), max_new_tokens=48, num_beams=1, do_sample=False)
    assert tok.decode(ids[0], skip_special_tokens=True).strip() == out["translations"][0]
    high = tr.translate(texts[:2], translation_dir, detail_level="high")
    assert high["truncated"] == [False, False]
    assert all(len(i) == len(s) > 0 for i, s in zip(high["token_ids"], high["token_scores"], strict=True))
    assert all(x <= 0 for s in high["token_scores"] for x in s)
    json.dumps(high)


def test_tuner_predict_matches_the_easy_module(translation_trained, translation_dir: Path, cipher_df):
    texts = list(cipher_df.source[:3])
    assert translation_trained[0].predict(texts) == EasyTranslator().translate(texts, translation_dir)


def test_easy_summarizer_handles_long_text_and_generation_options(summarization_dir: Path, aclsum_dfs):
    valid = aclsum_dfs[1]
    sm = EasySummarizer()
    long_text = " ".join(valid.text[:4])  # ~800 tokens; the model reads 256
    short = valid.text[0][:300]
    out = sm.summarize([short, long_text], summarization_dir, num_tokens_to_produce=20, detail_level="medium")
    assert set(out) == {"sentences", "summaries", "truncated"} and out["truncated"] == [False, True]
    assert all(isinstance(s, str) for s in out["summaries"])
    beams = sm.summarize(valid.text[0], summarization_dir, num_beams=3, no_repeat_ngram_size=2)
    assert len(beams["summaries"]) == 1
    s1 = sm.summarize(valid.text[0], summarization_dir, do_sample=True, top_k=20, seed=3)
    assert s1 == sm.summarize(valid.text[0], summarization_dir, do_sample=True, top_k=20, seed=3)


def test_rejected_generation_arguments_are_explained(translation_dir: Path):
    with pytest.raises(InvalidInputError, match="Unknown option 'bogus_option'.*Accepted: num_tokens_to_produce, prefix"):
        EasyTranslator().translate("the market rose", translation_dir, bogus_option=1)
    with pytest.raises(InvalidInputError, match="transformers refused the generation options"):
        EasyTranslator().translate("the market rose", translation_dir, do_sample=True, top_p=-2.0)
    with pytest.raises(InvalidInputError, match="num_beams must be a positive integer"):
        EasyTranslator().translate("the market rose", translation_dir, num_beams=0)
    with pytest.raises(InvalidInputError, match="num_tokens_to_produce"):
        EasyTranslator().translate("the market rose", translation_dir, num_tokens_to_produce=0)
    with pytest.raises(InvalidInputError):
        EasyTranslator().translate(["ok", ""], translation_dir)


def test_wrong_model_kind_says_what_was_found(translation_dir: Path, summarization_dir: Path, saved_dir: Path):
    with pytest.raises(WrongTaskError, match="'translation' model"):
        EasySummarizer().summarize("some text", translation_dir)
    with pytest.raises(WrongTaskError, match="'summarization' model"):
        EasyTranslator().translate("some text", summarization_dir)
    with pytest.raises(WrongTaskError, match="sequence_classification"):
        EasyTranslator().translate("some text", saved_dir)


# -- datasets and models -----------------------------------------------------------------------------
def test_missing_or_empty_source_and_target_columns(translation_dir: Path):
    df = pd.DataFrame({"source": ["a b c", "d e f", "g h i"], "target": ["c b a", "f e d", "i h g"]})
    with pytest.raises(MissingColumnError, match="target"):
        TranslationDatasets.from_dfs(df.drop(columns="target"), str(translation_dir))
    with pytest.raises(MissingColumnError, match="summary"):
        SummarizationDatasets.from_dfs(df.rename(columns={"source": "text"}), str(translation_dir))
    bad = df.copy()
    bad.loc[1, "target"] = "  "
    with pytest.raises(InvalidInputError, match=r"DataFrame index 1: 'target' is empty"):
        TranslationDatasets.from_dfs(bad, str(translation_dir), valid_df=df)


def test_long_sources_are_truncated_with_a_warning_and_shown(translation_dir: Path, caplog):
    df = pd.DataFrame({"source": ["word " * 100, "short one"] * 2, "target": ["drow " * 100, "short eno"] * 2})
    with caplog.at_level("WARNING"):
        dsets = TranslationDatasets.from_dfs(df, str(translation_dir), valid_df=df, max_source_length=16, max_target_length=8)
    assert "2 of 4 sources exceed max_source_length=16 and 2 targets exceed max_target_length=8" in caplog.text
    assert max(len(x) for x in dsets.train["input_ids"]) == 16 and max(len(x) for x in dsets.train["labels"]) == 8
    table = dsets.dataloaders(batch_size=2).batch_table(n=2, seed=0)
    assert list(table.columns) == ["source", "target"]


def test_bert2bert_warm_start_from_an_encoder(model_path: str):
    from transformers import EncoderDecoderModel

    df = pd.DataFrame({"source": ["the market rose today", "shares fell"] * 4, "target": ["markets up", "shares down"] * 4})
    dsets = TranslationDatasets.from_dfs(df, model_path, max_source_length=16, max_target_length=8)
    tuner = TranslationTuner(dsets.dataloaders(batch_size=4), model_path)
    assert isinstance(tuner.model, EncoderDecoderModel)
    tok = dsets.tokenizer
    assert tuner.model.config.decoder_start_token_id == tok.cls_token_id
    assert tuner.model.config.eos_token_id == tok.sep_token_id
    x, y = tuner.dls.one_batch()
    assert "decoder_input_ids" in x and float(tuner.learn.loss_func(tuner.learn.model(x), y)) > 0


def test_decoder_only_models_are_refused(tiny_lm_dir: Path, cipher_df):
    dsets = TranslationDatasets.from_dfs(cipher_df.iloc[:20], str(tiny_lm_dir), max_source_length=16, max_target_length=16)
    with pytest.raises(WrongTaskError, match="neither an encoder-decoder"):
        TranslationTuner(dsets.dataloaders(batch_size=4), str(tiny_lm_dir))
