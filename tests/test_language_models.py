"""Language models: block datasets, causal and masked fine-tuning, generation, fill-mask, flair embeddings."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from adapt import (
    EasyDocumentEmbeddings,
    EasyFillMask,
    EasyStackedEmbeddings,
    EasyTextGenerator,
    EasyWordEmbeddings,
    EmptyDatasetError,
    InvalidChoiceError,
    InvalidInputError,
    LanguageModelDatasets,
    ModelNotFoundError,
    WrongTaskError,
)
from adapt.tasks.language_modeling import HFTextGenerator

from .conftest import LM_BLOCK

PROMPTS = ["The government said", "Shares in the company rose", "A late goal"]


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
def test_blocks_keep_every_token(bbc_df, tiny_lm_dir: Path) -> None:
    """Texts are joined with EOS between documents and cut into blocks; nothing but a lone last token is lost."""
    from transformers import AutoTokenizer

    df = bbc_df[["text"]].iloc[:30]
    dsets = LanguageModelDatasets.from_dfs(df, "text", str(tiny_lm_dir), valid_df=df.iloc[:5], block_size=50)
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    expected = sum(len(tok(t)["input_ids"]) + 1 for t in df.text)  # +1: the EOS after each document
    lengths = [len(ids) for ids in dsets.train["input_ids"]]
    assert max(lengths) == 50 and sum(n < 50 for n in lengths) <= 1
    assert expected - 1 <= sum(lengths) <= expected
    joined = [t for ids in dsets.train["input_ids"] for t in ids]
    assert joined.count(tok.eos_token_id) >= len(df) - 1
    assert dsets.max_length == 50 and "causal" in repr(dsets)


def test_eos_padding_keeps_eos_labels(bbc_df, tiny_lm_dir: Path) -> None:
    """A GPT-2 style tokenizer without a pad token pads with EOS; the EOS between documents is still a target."""
    from transformers import AutoTokenizer

    from datasets import Dataset

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tok.pad_token = None
    df = bbc_df[["text"]].iloc[:12]
    dsets = LanguageModelDatasets(
        Dataset.from_pandas(df.iloc[:8]), Dataset.from_pandas(df.iloc[8:]), tokenizer=tok, block_size=40
    )
    assert tok.pad_token_id == tok.eos_token_id
    rows = [dsets.train[i] for i in range(len(dsets.train))]
    batch = dsets.default_collate()([{k: r[k] for k in ("input_ids", "attention_mask")} for r in rows])
    assert int((batch["labels"] == tok.eos_token_id).sum()) >= 7  # the EOS after each document
    assert int((batch["labels"] == -100).sum()) == int((batch["attention_mask"] == 0).sum()) > 0


def test_block_size_default_and_clamp(bbc_df, tiny_lm_dir: Path, model_path: str) -> None:
    from transformers import AutoTokenizer

    from datasets import Dataset

    df = bbc_df[["text"]].iloc[:12]
    assert LanguageModelDatasets.from_dfs(df, "text", model_path).block_size == 128  # MiniLM takes 512: min(512, 128)
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tok.model_max_length = 32  # a model that takes fewer than 128 positions
    small = LanguageModelDatasets(Dataset.from_pandas(df.iloc[:8]), Dataset.from_pandas(df.iloc[8:]), tokenizer=tok)
    assert small.block_size == 32
    with pytest.warns(UserWarning, match="larger than the model maximum"):
        clamped = LanguageModelDatasets.from_dfs(df, "text", str(tiny_lm_dir), block_size=4096)
    assert clamped.block_size == 128  # the tiny GPT-2 has 128 positions
    for bad in (0, 1, "64", 2.5):
        with pytest.raises(InvalidInputError, match="block_size"):
            LanguageModelDatasets.from_dfs(df, "text", str(tiny_lm_dir), block_size=bad)


def test_bad_corpora(bbc_df, tiny_lm_dir: Path, model_path: str) -> None:
    import pandas as pd

    with pytest.raises(EmptyDatasetError, match="corpus is empty"):
        LanguageModelDatasets.from_dfs(pd.DataFrame({"text": ["", "  ", "\n"] * 4}), "text", str(tiny_lm_dir))
    with pytest.raises(EmptyDatasetError):
        LanguageModelDatasets.from_dfs(pd.DataFrame({"text": []}), "text", str(tiny_lm_dir))
    with pytest.raises(InvalidInputError, match=r"1 bad row\(s\): DataFrame index 1: a NoneType in 'text', not text"):
        LanguageModelDatasets.from_dfs(
            pd.DataFrame({"text": ["fine", None, "ok"]}), "text", str(tiny_lm_dir), valid_df=pd.DataFrame({"text": ["x y"]})
        )
    with pytest.raises(KeyError, match="Available columns"):
        LanguageModelDatasets.from_dfs(bbc_df, "body", str(tiny_lm_dir))
    with pytest.raises(InvalidInputError, match="mlm_probability"):
        LanguageModelDatasets.from_dfs(bbc_df.iloc[:10], "text", model_path, masked_lm=True, mlm_probability=1.5)
    # GPT-2 has no AutoModelForMaskedLM class: masked mode is refused up front, naming the way out
    with pytest.raises(WrongTaskError, match="no AutoModelForMaskedLM.*masked_lm=False"):
        LanguageModelDatasets.from_dfs(bbc_df.iloc[:10], "text", str(tiny_lm_dir), masked_lm=True)


def test_from_folders_csvs_and_hf_agree(bbc_dir: Path, tmp_path: Path, tiny_lm_dir: Path) -> None:
    import pandas as pd

    from datasets import Dataset

    folder = LanguageModelDatasets.from_folders(bbc_dir / "tech", str(tiny_lm_dir), max_items=20, encoding="latin-1", seed=1)
    texts = [f.read_text(encoding="latin-1") for f in sorted((bbc_dir / "tech").glob("*.txt"))][:20]
    df = pd.DataFrame({"body": texts})
    df.iloc[:16].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[16:].to_csv(tmp_path / "valid.csv", index=False)
    csv = LanguageModelDatasets.from_csvs(tmp_path / "train.csv", "body", str(tiny_lm_dir), valid_csv=tmp_path / "valid.csv")
    hf = LanguageModelDatasets.from_hf(
        {"train": Dataset.from_pandas(df.iloc[:16]), "validation": Dataset.from_pandas(df.iloc[16:])}, "body", str(tiny_lm_dir)
    )
    assert csv.train["input_ids"] == hf.train["input_ids"] and csv.valid["input_ids"] == hf.valid["input_ids"]
    assert len(folder.train) > 0 and len(folder.valid) > 0 and folder.block_size == 128


def test_causal_batches_and_show_batch(causal_trained, capsys: pytest.CaptureFixture[str]) -> None:
    tuner, _, _ = causal_trained
    x, y = tuner.dls.valid.one_batch()
    assert set(x) == {"input_ids", "attention_mask"}  # no token_type_ids: generate() would reject them
    assert bool(((y == -100) == (x["attention_mask"] == 0)).all())  # only padding is ignored
    assert bool((y[y != -100] == x["input_ids"][y != -100]).all())
    tuner.dls.show_batch(n=2, seed=0)
    out = capsys.readouterr().out
    assert "n_tokens" in out and str(LM_BLOCK) in out


def test_masked_batches_mark_masks(mlm_trained, capsys: pytest.CaptureFixture[str]) -> None:
    tuner, _, _, _ = mlm_trained
    dsets = tuner.dls.task_datasets
    x, y = tuner.dls.train.one_batch()
    masked = y != -100
    share = masked.sum().item() / (x["attention_mask"].sum().item())
    assert 0.08 < share < 0.22  # mlm_probability 0.15 of the non-special tokens
    assert bool((x["input_ids"][masked] == tuner.tokenizer.mask_token_id).float().mean() > 0.6)  # 80% become [MASK]
    # validation blocks are masked once, so two passes see identical inputs and labels
    (x1, y1), (x2, y2) = tuner.dls.valid.one_batch(), tuner.dls.valid.one_batch()
    assert bool((y1 == y2).all()) and bool((x1["input_ids"] == x2["input_ids"]).all())
    view = dsets.row_view(dsets.valid[0])
    assert view["n_masked"] > 0 and view["text"].count("[[") == view["n_masked"]
    tuner.dls.show_batch(n=2, seed=0)
    assert "[[" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------
def test_causal_perplexity_falls_by_a_large_factor(causal_trained) -> None:
    tuner, before, after = causal_trained
    assert before["perplexity"] > 500  # a random model over a 2,000-token vocabulary
    assert after["perplexity"] < before["perplexity"] / 4, (before, after)
    hist = tuner.history()
    assert [h["perplexity"] for h in hist] == sorted((h["perplexity"] for h in hist), reverse=True)
    assert abs(hist[-1]["perplexity"] - after["perplexity"]) / after["perplexity"] < 1e-3


def test_masked_lm_loss_falls_and_new_head_warns(mlm_trained) -> None:
    _, before, after, warned = mlm_trained
    assert any("no trained masked-LM head" in w for w in warned), warned
    assert after["valid_loss"] < 0.8 * before["valid_loss"], (before, after)
    assert after["perplexity"] < before["perplexity"] / 10


def test_tuner_refuses_wrong_kind(bbc_df, tiny_lm_dir: Path, model_path: str, saved_dir: Path) -> None:
    from adapt import LanguageModelTuner

    dsets = LanguageModelDatasets.from_dfs(bbc_df[["text"]].iloc[:10], "text", str(tiny_lm_dir), block_size=32)
    with pytest.raises(WrongTaskError, match="sequence_classification"):
        LanguageModelTuner(dsets.dataloaders(batch_size=4), str(saved_dir))
    with pytest.raises(ValueError, match="LanguageModelDatasets"):
        LanguageModelTuner(object(), str(tiny_lm_dir))


# ---------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def causal_dir(causal_trained, tmp_path_factory) -> Path:
    tuner, _, _ = causal_trained
    return tuner.save(tmp_path_factory.mktemp("causal") / "bbc-gpt2")


@pytest.fixture(scope="module")
def generator() -> EasyTextGenerator:
    return EasyTextGenerator()


def test_generate_shapes_and_detail_levels(generator: EasyTextGenerator, causal_dir: Path) -> None:
    low = generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=12)
    assert list(low) == ["generated_text"] and len(low["generated_text"]) == 3
    assert all(g.startswith(p) and len(g) > len(p) for g, p in zip(low["generated_text"], PROMPTS, strict=True))
    med = generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=12, detail_level="medium")
    assert med["prompts"] == PROMPTS
    assert [p + c for p, c in zip(med["prompts"], med["continuations"], strict=True)] == low["generated_text"]
    high = generator.generate(PROMPTS[0], causal_dir, num_tokens_to_produce=12, detail_level="high")
    ids, scores = high["token_ids"][0], high["token_scores"][0]
    assert 1 <= len(ids) <= 12 and len(scores) == len(ids) and all(s <= 0 for s in scores)
    json.dumps(high)
    with pytest.raises(InvalidChoiceError, match="Low \\('low'\\), Medium \\('medium'\\), High \\('high'\\)"):
        generator.generate(PROMPTS[0], causal_dir, detail_level="verbose")


def test_batched_left_padding_matches_one_by_one(generator: EasyTextGenerator, causal_dir: Path) -> None:
    batched = generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=10, mini_batch_size=3)["generated_text"]
    single = [generator.generate(p, causal_dir, num_tokens_to_produce=10)["generated_text"][0] for p in PROMPTS]
    assert batched == single


def test_sampling_is_reproducible_with_a_seed(generator: EasyTextGenerator, causal_dir: Path) -> None:
    kw = {"num_tokens_to_produce": 20, "do_sample": True, "top_k": 50, "top_p": 0.95}
    a = generator.generate(PROMPTS, causal_dir, seed=7, **kw)
    b = generator.generate(PROMPTS, causal_dir, seed=7, **kw)
    c = generator.generate(PROMPTS, causal_dir, seed=8, **kw)
    assert a == b and a != c
    greedy = generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=20)
    beams = generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=20, num_beams=3, detail_level="high")
    assert greedy != a and len(beams["generated_text"]) == 3 and all(beams["token_ids"])


def test_tuner_predict_and_plain_transformers_agree(causal_trained, causal_dir: Path, generator: EasyTextGenerator) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tuner, _, _ = causal_trained
    assert tuner.predict(PROMPTS, num_tokens_to_produce=8) == generator.generate(PROMPTS, causal_dir, num_tokens_to_produce=8)
    model, tok = AutoModelForCausalLM.from_pretrained(causal_dir), AutoTokenizer.from_pretrained(causal_dir)
    enc = tok(PROMPTS[0], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    expected = PROMPTS[0] + tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert generator.generate(PROMPTS[0], causal_dir, num_tokens_to_produce=8)["generated_text"] == [expected]
    manifest = json.loads((causal_dir / "adapt.json").read_text())
    assert manifest["task"] == "language_modeling" and manifest["masked_lm"] is False and manifest["block_size"] == LM_BLOCK


def test_generation_bad_input(generator: EasyTextGenerator, causal_dir: Path) -> None:
    for n in (0, -3, "5", 1.5, True):
        with pytest.raises(InvalidInputError, match="num_tokens_to_produce"):
            generator.generate("Shares", causal_dir, num_tokens_to_produce=n)
    with pytest.raises(InvalidInputError, match="no room for a prompt"):
        generator.generate("Shares", causal_dir, num_tokens_to_produce=128)
    for bad in (None, 3, [], ["ok", None]):
        with pytest.raises(InvalidInputError):
            generator.generate(bad, causal_dir)
    with pytest.raises(InvalidInputError, match="Unknown option 'not_an_option'.*Accepted: num_tokens_to_produce, seed"):
        generator.generate("Shares", causal_dir, num_tokens_to_produce=4, not_an_option=1)
    with pytest.raises(InvalidInputError, match="Unknown option 'num_return_sequences'"):
        generator.generate("Shares", causal_dir, num_return_sequences=2, do_sample=True)
    with pytest.raises(InvalidInputError, match=r"transformers refused the generation options \['temperature'\]"):
        generator.generate("Shares", causal_dir, num_tokens_to_produce=4, do_sample=True, temperature=-1.0)


def test_empty_prompt_needs_bos(generator: EasyTextGenerator, causal_dir: Path, causal_trained) -> None:
    out = generator.generate(["", "Shares"], causal_dir, num_tokens_to_produce=6, detail_level="medium")
    assert out["prompts"][0] == "" and out["continuations"][0]  # started from the BOS token
    tuner, _, _ = causal_trained
    model, tok = copy.deepcopy(tuner.model), copy.deepcopy(tuner.tokenizer)
    model.config.bos_token_id, tok.bos_token = None, None
    with pytest.raises(InvalidInputError, match="no BOS token"):
        HFTextGenerator(model, tok).predict([""], num_tokens_to_produce=3)


def test_overlong_prompt_keeps_its_end(generator: EasyTextGenerator, causal_dir: Path) -> None:
    long_prompt = "The economy grew strongly last year. " * 60  # far over the 128 positions
    out = generator.generate(long_prompt, causal_dir, num_tokens_to_produce=10, detail_level="high")
    assert out["prompt_truncated"] == [True] and out["generated_text"][0].startswith(long_prompt)


def test_wrong_kind_of_model_for_each_easy_module(
    generator: EasyTextGenerator, causal_dir: Path, mlm_trained, tmp_path: Path
) -> None:
    tuner, _, _, _ = mlm_trained
    mlm_dir = tuner.save(tmp_path / "mlm")
    with pytest.raises(WrongTaskError, match="masked_language_modeling.*BertForMaskedLM.*use EasyFillMask.fill_mask"):
        generator.generate("Shares", mlm_dir)
    with pytest.raises(WrongTaskError, match="GPT2LMHeadModel"):
        EasyFillMask().fill_mask("Shares [MASK].", causal_dir)
    with pytest.raises(ModelNotFoundError):
        generator.generate("Shares", tmp_path / "missing")


# ---------------------------------------------------------------------------------------------------
# fill-mask
# ---------------------------------------------------------------------------------------------------
def test_fill_mask(mlm_trained, tmp_path: Path) -> None:
    tuner, _, _, _ = mlm_trained
    saved = tuner.export(tmp_path / "mlm")
    assert (saved / "README.md").is_file()
    text = "Shares [MASK] sharply after the [MASK] results."
    fm = EasyFillMask()
    low = fm.fill_mask([text, "The [MASK] won."], saved, top_k=3)
    preds = low["predictions"][0]
    assert len(preds) == 2 and all(len(m) == 3 for m in preds)
    for cands in preds:
        scores = [c["score"] for c in cands]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
        assert all("[MASK]" not in c["sequence"] and c["token"] in c["sequence"] for c in cands)
    top1 = [m[0]["token"] for m in preds]
    assert low["filled"][0] == f"Shares {top1[0]} sharply after the {top1[1]} results."
    med = fm.fill_mask(text, saved, top_k=2, detail_level="medium")
    assert [text[s:e] for s, e in med["mask_spans"][0]] == ["[MASK]", "[MASK]"] and "token_id" in med["predictions"][0][0][0]
    assert tuner.predict(text, top_k=3) == fm.fill_mask(text, saved, top_k=3)  # one shared path
    with pytest.raises(InvalidInputError, match=r"no \[MASK\] token"):
        fm.fill_mask("No mask here.", saved)
    with pytest.raises(InvalidInputError, match="top_k"):
        fm.fill_mask(text, saved, top_k=0)
    with pytest.raises(InvalidChoiceError, match="no int8 copy .int8 is made for question_answering, sequence_class"):
        tuner.export(tmp_path / "q", quantize=True)


def test_fill_mask_far_past_the_model_maximum(mlm_trained, tmp_path: Path) -> None:
    tuner, _, _, _ = mlm_trained
    saved = tuner.save(tmp_path / "mlm")
    text = "The economy grew strongly last year. " * 150 + "Shares [MASK] sharply."  # ~1,200 tokens
    out = EasyFillMask().fill_mask(text, saved, detail_level="high")
    assert out["windows"][0] > 2 and len(out["predictions"][0]) == 1
    s, e = out["mask_spans"][0][0]
    assert text[s:e] == "[MASK]" and out["filled"][0].endswith(f"Shares {out['predictions'][0][0][0]['token']} sharply.")


# ---------------------------------------------------------------------------------------------------
# embeddings (flair)
# ---------------------------------------------------------------------------------------------------
SENTENCES = [
    "Chelsea won the match with a late goal from Drogba.",
    "The striker scored twice as Arsenal beat Liverpool in the league.",
    "Shares fell sharply after the bank reported weaker quarterly profits.",
]


@pytest.fixture(scope="module")
def word_embeddings(model_path: str) -> dict:
    return EasyWordEmbeddings().embed_text(SENTENCES, model_path)


def test_word_embeddings(word_embeddings: dict, model_path: str) -> None:
    out = word_embeddings
    assert out["sentences"] == SENTENCES and out["tokens"][0][:3] == ["Chelsea", "won", "the"]
    assert [len(v) for v in out["embeddings"]] == [len(t) for t in out["tokens"]]
    assert all(len(vec) == 384 and isinstance(vec[0], float) for vec in out["embeddings"][0])
    json.dumps({k: v for k, v in out.items() if k not in ("sentence_embeddings", "token_embeddings")})  # adapt's keys
    one = EasyWordEmbeddings().embed_text(SENTENCES[0], model_path, return_tensors="np")
    assert isinstance(one["embeddings"][0], np.ndarray) and one["embeddings"][0].shape == (len(out["tokens"][0]), 384)
    np.testing.assert_allclose(one["embeddings"][0], np.array(out["embeddings"][0]), atol=1e-4)
    long_text = " ".join([SENTENCES[0]] * 80)  # ~1,000 sub-words: embedded in windows, every word kept
    long = EasyWordEmbeddings().embed_text(long_text, model_path, return_tensors="np")
    assert long["embeddings"][0].shape == (80 * len(out["tokens"][0]), 384)


def test_stacked_embeddings_concatenate_in_order(word_embeddings: dict, model_path: str, tiny_lm_dir: Path) -> None:
    out = EasyStackedEmbeddings(model_path, str(tiny_lm_dir)).embed_text(SENTENCES, return_tensors="np")
    assert out["tokens"] == word_embeddings["tokens"]
    first = out["embeddings"][0]
    assert first.shape == (len(out["tokens"][0]), 384 + 128)  # MiniLM then the tiny GPT-2
    np.testing.assert_allclose(first[:, :384], np.array(word_embeddings["embeddings"][0]), atol=1e-4)


def test_document_embeddings(word_embeddings: dict, model_path: str) -> None:
    docs = EasyDocumentEmbeddings(model_path)
    mean = docs.embed_text(SENTENCES, return_tensors="np")["embeddings"]
    assert mean.shape == (3, 384)
    np.testing.assert_allclose(mean[0], np.array(word_embeddings["embeddings"][0]).mean(0), atol=1e-4)
    unit = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]  # two football reports sit closer than football and finance
    cls = docs.embed_text(SENTENCES[0], pooling="cls")
    assert list(cls) == ["sentences", "embeddings", "inputs", "sentence_embeddings", "token_embeddings"]
    # AdaptNLP's key holds a tensor, adapt's the JSON lists: equal values, no longer one object
    assert len(cls["embeddings"][0]) == 384 and cls["sentence_embeddings"].tolist() == cls["embeddings"]
    assert not np.allclose(cls["embeddings"][0], mean[0])
    # where both keys hold the same kind of value they are still one object, not a copy
    as_np = docs.embed_text(SENTENCES[0], pooling="cls", return_tensors="np")
    assert as_np["sentence_embeddings"] is as_np["embeddings"]
    view = docs.embed_text(SENTENCES[0], pooling="cls", detail_level=None).to_dict()
    assert view["sentence_embeddings"] is view["embeddings"] and view["embeddings"] == cls["embeddings"]
    with pytest.raises(InvalidChoiceError, match=r"Valid: Mean \('mean'\), Max \('max'\), Min \('min'\), CLS \('cls'\)"):
        docs.embed_text(SENTENCES[0], pooling="average")


def test_embedding_results_hold_tensors_where_adaptnlp_did(word_embeddings: dict, model_path: str) -> None:
    """AdaptNLP's keys hold torch tensors (`res["token_embeddings"][0].shape` works); `to_dict` stays JSON."""
    import torch

    words = word_embeddings
    assert [tuple(t.shape) for t in words["token_embeddings"]] == [(len(t), 384) for t in words["tokens"]]
    assert all(t.dtype == torch.float32 for t in words["token_embeddings"]) and words["sentence_embeddings"] == []
    assert [t.tolist() for t in words["token_embeddings"]] == words["embeddings"]  # the JSON keys, same values
    raw = EasyWordEmbeddings().embed_text(SENTENCES, model_path, detail_level=None)
    view = raw.to_dict("medium")
    json.loads(json.dumps(view))
    assert view["token_embeddings"] is view["embeddings"] and view["sentence_embeddings"] == []
    assert [t.tolist() for t in raw.token_embeddings] == view["embeddings"]
    np.testing.assert_allclose(np.array(view["embeddings"][0]), words["token_embeddings"][0].numpy(), atol=1e-5)

    docs = EasyDocumentEmbeddings(model_path, configs={"rnn_configs": {"hidden_size": 16}})
    for out, dim in ((docs.embed_text(SENTENCES), 384), (docs.embed_pool(SENTENCES), 384), (docs.embed_rnn(SENTENCES), 16)):
        vectors = out["sentence_embeddings"]
        assert isinstance(vectors, torch.Tensor) and vectors.shape == (3, dim) and vectors[0].shape == (dim,)
        assert vectors.tolist() == out["embeddings"] and out["token_embeddings"] == [[], [], []]
    unit = torch.nn.functional.normalize(docs.embed_text(SENTENCES)["sentence_embeddings"], dim=1)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]  # tensor arithmetic, as with AdaptNLP's results
    raw_docs = docs.embed_pool(SENTENCES, detail_level=None)
    assert raw_docs.sentence_embeddings.tolist() == raw_docs.to_dict()["sentence_embeddings"]


def test_embeddings_bad_input(model_path: str, tmp_path: Path) -> None:
    for bad in ("", None, [], ["ok", 3]):
        with pytest.raises(InvalidInputError):
            EasyWordEmbeddings().embed_text(bad, model_path)
    with pytest.raises(InvalidChoiceError, match="return_tensors"):
        EasyWordEmbeddings().embed_text("ok", model_path, return_tensors="pt")
    with pytest.raises(ModelNotFoundError):
        EasyWordEmbeddings().embed_text("ok", str(tmp_path / "nope"))
    with pytest.raises(InvalidInputError, match="at least one model"):
        EasyStackedEmbeddings()


def test_validation_masks_are_seeded_per_block(mlm_trained) -> None:
    from adapt.tasks.language_modeling import _mask_once

    tuner, _, _, _ = mlm_trained
    row = tuner.dls.task_datasets.train[0]
    batch = {"input_ids": [row["input_ids"]] * 2, "special_tokens_mask": [row["special_tokens_mask"]] * 2}
    collator = tuner.dls.task_datasets.collate.lm
    same = _mask_once(batch, [5, 5], collator, seed=42)
    apart = _mask_once(batch, [5, 1005], collator, seed=42)  # 1,000 apart: the next map batch of the same length
    assert same["labels"][0] == same["labels"][1] and apart["labels"][0] != apart["labels"][1]
    assert _mask_once(batch, [5, 1005], collator, seed=42) == apart


def test_cut_at_eos() -> None:
    from adapt.generation import cut_at_eos as _cut_at_eos
    from adapt.generation import id_set as _id_set

    assert _cut_at_eos([5, 6, 2, 2, 2], {2}, 2) == [5, 6, 2]  # pad == eos: up to the first EOS
    assert _cut_at_eos([5, 1, 6, 1, 1], {2}, 1) == [5, 1, 6]  # a generated pad id mid-row stays; trailing pads go
    assert _cut_at_eos([5, 7, 9], {2, 9}, 1) == [5, 7, 9]  # any of several EOS ids stops the row
    assert _id_set(None, 2, [3, 4], True) == {2, 3, 4}


def test_fill_mask_rejects_unknown_options(mlm_trained) -> None:
    tuner, _, _, _ = mlm_trained
    with pytest.raises(InvalidInputError, match="Unknown option 'topk'.*Did you mean 'top_k'"):
        tuner.predict("Shares [MASK].", topk=3)


def test_cls_document_embeddings_window_long_texts(model_path: str) -> None:
    docs = EasyDocumentEmbeddings(model_path)
    out = docs.embed_text([" ".join([SENTENCES[0]] * 100), SENTENCES[1]], pooling="cls", return_tensors="np")
    assert out["embeddings"].shape == (2, 384) and np.isfinite(out["embeddings"]).all()
    docs.release()
    assert not docs._docs
