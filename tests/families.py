"""Tiny random-weight models of the backbone families users bring, each with a real fast tokenizer of its kind.

Test assets only: every model has hidden size <= 64 and 2 layers, built from a transformers config, and its
tokenizer is trained here with the `tokenizers` library (WordPiece, byte-level BPE) or `sentencepiece` (Unigram),
then loaded through the family's own tokenizer class, as a hub folder of that family would be. `FAMILIES` names what
each family is tested for: the family matrix (`tests/test_families.py`) runs every task listed, and the README's
table of families is checked against it.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VOCAB = 1000
HIDDEN = 64
MAX_POS = 256

ENCODER_TASKS = ("sequence_classification", "token_classification", "question_answering", "masked_language_modeling")
SEQ2SEQ_TASKS = ("summarization", "translation")
DECODER_TASKS = ("language_modeling", "sequence_classification")


@dataclass(frozen=True)
class Family:
    """A backbone family: its tokenizer kind, the tasks adapt supports for it, and how to build a tiny one."""

    name: str
    model_type: str
    tokenizer_kind: str
    tasks: tuple[str, ...]
    build: Callable[[Sequence[str], Path], Path]


# ---------------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------------
def _clean(texts: Sequence[str]) -> list[str]:
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _wordpiece(texts: Sequence[str], work: Path, specials: Sequence[str], lowercase: bool = False) -> Path:
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase)
    wp.train_from_iterator(_clean(texts), vocab_size=VOCAB, special_tokens=list(specials), show_progress=False)
    work.mkdir(parents=True, exist_ok=True)
    return Path(wp.save_model(str(work))[0])


def _byte_bpe(texts: Sequence[str], work: Path, specials: Sequence[str]) -> tuple[str, str]:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_clean(texts), vocab_size=VOCAB, min_frequency=2, special_tokens=list(specials),
                            show_progress=False)
    work.mkdir(parents=True, exist_ok=True)
    vocab, merges = bpe.save_model(str(work))
    return vocab, merges


def _sentencepiece(texts: Sequence[str], work: Path, **ids: int) -> Path:
    """A Unigram SentencePiece model (the `.model` file hub folders of these families hold)."""
    import sentencepiece as spm

    work.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_clean(texts)), model_writer=buf, vocab_size=VOCAB, model_type="unigram",
        character_coverage=1.0, minloglevel=2, num_threads=1, **{"pad_id": -1, "bos_id": -1, **ids},
    )
    path = work / "spiece.model"
    path.write_bytes(buf.getvalue())
    return path


# ---------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------
def _save(model_cls: Any, config: Any, tokenizer: Any, directory: Path, sentencepiece_only: bool = False) -> Path:
    """Save a seeded random model and its tokenizer; `sentencepiece_only`: without `tokenizer.json`, as many hub
    folders of SentencePiece families are (transformers converts the `.model` file to a fast tokenizer at load)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_cls(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if sentencepiece_only:
        (directory / "tokenizer.json").unlink()
    return directory


def _n_vocab(tok: Any) -> int:
    """Embedding rows for every id the tokenizer can produce (XLM-R's fairseq offset puts `<mask>` past len(tok))."""
    return max(len(tok), int(tok.vocab_size), max(tok.all_special_ids) + 1)


def _ids(tok: Any) -> dict[str, Any]:
    return {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}


BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def bert(texts: Sequence[str], directory: Path) -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    tok = BertTokenizerFast(vocab_file=str(_wordpiece(texts, directory / "_tok", BERT_SPECIALS)), do_lower_case=False)
    cfg = BertConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS, pad_token_id=tok.pad_token_id)
    return _save(BertForMaskedLM, cfg, tok, directory)


def distilbert(texts: Sequence[str], directory: Path) -> Path:
    from transformers import DistilBertConfig, DistilBertForMaskedLM, DistilBertTokenizerFast

    tok = DistilBertTokenizerFast(vocab_file=str(_wordpiece(texts, directory / "_tok", BERT_SPECIALS)), do_lower_case=False)
    cfg = DistilBertConfig(vocab_size=_n_vocab(tok), dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=2 * HIDDEN,
                           max_position_embeddings=MAX_POS, pad_token_id=tok.pad_token_id)
    return _save(DistilBertForMaskedLM, cfg, tok, directory)


def electra(texts: Sequence[str], directory: Path) -> Path:
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraTokenizerFast

    tok = ElectraTokenizerFast(vocab_file=str(_wordpiece(texts, directory / "_tok", BERT_SPECIALS)), do_lower_case=False)
    cfg = ElectraConfig(vocab_size=_n_vocab(tok), embedding_size=HIDDEN, hidden_size=HIDDEN, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS,
                        pad_token_id=tok.pad_token_id)
    return _save(ElectraForMaskedLM, cfg, tok, directory)


def mpnet(texts: Sequence[str], directory: Path) -> Path:
    from transformers import MPNetConfig, MPNetForMaskedLM, MPNetTokenizerFast

    specials = ("<s>", "<pad>", "</s>", "[UNK]", "<mask>")
    tok = MPNetTokenizerFast(vocab_file=str(_wordpiece(texts, directory / "_tok", specials)), do_lower_case=False)
    cfg = MPNetConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS, **_ids(tok))
    return _save(MPNetForMaskedLM, cfg, tok, directory)


def roberta(texts: Sequence[str], directory: Path) -> Path:
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    vocab, merges = _byte_bpe(texts, directory / "_tok", ROBERTA_SPECIALS)
    tok = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges)
    cfg = RobertaConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS + 2, **_ids(tok))
    return _save(RobertaForMaskedLM, cfg, tok, directory)


def modernbert(texts: Sequence[str], directory: Path) -> Path:
    """ModernBERT's tokenizer is a byte-level BPE `PreTrainedTokenizerFast` with BERT's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "<|endoftext|>"]
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(_clean(texts), trainer)
    cls, sep = raw.token_to_id("[CLS]"), raw.token_to_id("[SEP]")
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                  pad_token="[PAD]", mask_token="[MASK]", model_max_length=MAX_POS,
                                  model_input_names=["input_ids", "attention_mask"])
    cfg = ModernBertConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
                           num_attention_heads=2, max_position_embeddings=MAX_POS, local_attention=64,
                           pad_token_id=tok.pad_token_id, cls_token_id=cls, sep_token_id=sep, bos_token_id=cls,
                           eos_token_id=sep)
    return _save(ModernBertForMaskedLM, cfg, tok, directory)


def deberta_v3(texts: Sequence[str], directory: Path) -> Path:
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2TokenizerFast

    spm = _sentencepiece(texts, directory / "_tok", pad_id=0, bos_id=1, eos_id=2, unk_id=3,
                         pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]")
    tok = DebertaV2TokenizerFast(vocab_file=str(spm))
    cfg = DebertaV2Config(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS, relative_attention=True,
                          position_buckets=64, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
                          position_biased_input=False, max_relative_positions=-1, pad_token_id=tok.pad_token_id)
    return _save(DebertaV2ForMaskedLM, cfg, tok, directory)


def xlm_roberta(texts: Sequence[str], directory: Path) -> Path:
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaTokenizerFast

    spm = _sentencepiece(texts, directory / "_tok", unk_id=0, bos_id=1, eos_id=2, pad_id=3,
                         unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>", pad_piece="<pad>")
    tok = XLMRobertaTokenizerFast(vocab_file=str(spm))
    cfg = XLMRobertaConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS + 2, **_ids(tok))
    return _save(XLMRobertaForMaskedLM, cfg, tok, directory, sentencepiece_only=True)


def albert(texts: Sequence[str], directory: Path) -> Path:
    from transformers import AlbertConfig, AlbertForMaskedLM, AlbertTokenizerFast

    spm = _sentencepiece(texts, directory / "_tok", pad_id=0, unk_id=1, bos_id=2, eos_id=3,
                         pad_piece="<pad>", unk_piece="<unk>", bos_piece="[CLS]", eos_piece="[SEP]")
    tok = AlbertTokenizerFast(vocab_file=str(spm), do_lower_case=False)
    cfg = AlbertConfig(vocab_size=_n_vocab(tok), embedding_size=32, hidden_size=HIDDEN, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POS,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    return _save(AlbertForMaskedLM, cfg, tok, directory, sentencepiece_only=True)


def t5(texts: Sequence[str], directory: Path) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration, T5TokenizerFast

    spm = _sentencepiece(texts, directory / "_tok", pad_id=0, eos_id=1, unk_id=2,
                         pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>")
    tok = T5TokenizerFast(vocab_file=str(spm), extra_ids=0, model_max_length=MAX_POS)
    cfg = T5Config(vocab_size=_n_vocab(tok), d_model=HIDDEN, d_kv=32, d_ff=2 * HIDDEN, num_layers=2, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    return _save(T5ForConditionalGeneration, cfg, tok, directory)


def bart(texts: Sequence[str], directory: Path) -> Path:
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizerFast

    vocab, merges = _byte_bpe(texts, directory / "_tok", ROBERTA_SPECIALS)
    tok = BartTokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=MAX_POS)
    cfg = BartConfig(vocab_size=_n_vocab(tok), d_model=HIDDEN, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=2 * HIDDEN, decoder_ffn_dim=2 * HIDDEN,
                     max_position_embeddings=MAX_POS, decoder_start_token_id=tok.eos_token_id,
                     forced_eos_token_id=tok.eos_token_id, **_ids(tok))
    return _save(BartForConditionalGeneration, cfg, tok, directory)


def marian(texts: Sequence[str], directory: Path) -> Path:
    """Marian (opus-mt): one SentencePiece model each side and a shared vocab.json; no fast tokenizer exists."""
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    spm = _sentencepiece(texts, directory / "_tok", unk_id=1, eos_id=0, eos_piece="</s>", unk_piece="<unk>")
    import sentencepiece

    proc = sentencepiece.SentencePieceProcessor(model_file=str(spm))
    pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
    vocab = {p: i for i, p in enumerate([*pieces, "<pad>"])}
    (directory / "_tok" / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = MarianTokenizer(source_spm=str(spm), target_spm=str(spm), vocab=str(directory / "_tok" / "vocab.json"),
                          model_max_length=MAX_POS)
    cfg = MarianConfig(vocab_size=_n_vocab(tok), d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * HIDDEN,
                       decoder_ffn_dim=2 * HIDDEN, max_position_embeddings=MAX_POS, pad_token_id=tok.pad_token_id,
                       eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=tok.eos_token_id)
    return _save(MarianMTModel, cfg, tok, directory)


def gpt2(texts: Sequence[str], directory: Path) -> Path:
    """GPT-2 as on the hub: byte-level BPE, `<|endoftext|>` as BOS/EOS/UNK, no pad token."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    vocab, merges = _byte_bpe(texts, directory / "_tok", ["<|endoftext|>"])
    tok = GPT2TokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=MAX_POS)
    cfg = GPT2Config(vocab_size=_n_vocab(tok), n_positions=MAX_POS, n_embd=HIDDEN, n_layer=2, n_head=2,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return _save(GPT2LMHeadModel, cfg, tok, directory)


# Llama 3's pre-tokenizer pattern (words with their leading space, numbers of up to 3 digits, punctuation runs)
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                r"|\s+(?!\S)|\s+")


def llama(texts: Sequence[str], directory: Path) -> Path:
    """A Llama-3-style decoder: a regex split, then byte-level BPE (`PreTrainedTokenizerFast`), BOS added, no pad
    token, grouped-query attention."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=[bos, eos], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(_clean(texts), trainer)
    raw.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, raw.token_to_id(bos))]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=bos, eos_token=eos, model_max_length=MAX_POS,
                                  model_input_names=["input_ids", "attention_mask"])
    cfg = LlamaConfig(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POS,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    return _save(LlamaForCausalLM, cfg, tok, directory)


def qwen2(texts: Sequence[str], directory: Path) -> Path:
    """A Qwen2-style decoder: its config has no `pad_token_id` at all."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2TokenizerFast

    vocab, merges = _byte_bpe(texts, directory / "_tok", ["<|endoftext|>"])
    tok = Qwen2TokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=MAX_POS, pad_token=None)
    cfg = Qwen2Config(vocab_size=_n_vocab(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POS,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    cfg.pad_token_id = None
    return _save(Qwen2ForCausalLM, cfg, tok, directory)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("BERT", "bert", "WordPiece", ENCODER_TASKS, bert),
        Family("DistilBERT", "distilbert", "WordPiece", ENCODER_TASKS, distilbert),
        Family("ELECTRA", "electra", "WordPiece", ENCODER_TASKS, electra),
        Family("MPNet", "mpnet", "WordPiece", ENCODER_TASKS, mpnet),
        Family("RoBERTa", "roberta", "byte-level BPE", ENCODER_TASKS, roberta),
        Family("ModernBERT", "modernbert", "byte-level BPE", ENCODER_TASKS, modernbert),
        Family("DeBERTa-v3", "deberta-v2", "Unigram (SentencePiece)", ENCODER_TASKS, deberta_v3),
        Family("XLM-RoBERTa", "xlm-roberta", "Unigram (SentencePiece)", ENCODER_TASKS, xlm_roberta),
        Family("ALBERT", "albert", "Unigram (SentencePiece)", ENCODER_TASKS, albert),
        Family("T5", "t5", "Unigram (SentencePiece)", SEQ2SEQ_TASKS, t5),
        Family("BART", "bart", "byte-level BPE", SEQ2SEQ_TASKS, bart),
        Family("Marian", "marian", "Unigram (SentencePiece)", SEQ2SEQ_TASKS, marian),
        Family("GPT-2", "gpt2", "byte-level BPE", DECODER_TASKS, gpt2),
        Family("Llama", "llama", "byte-level BPE", DECODER_TASKS, llama),
        Family("Qwen2", "qwen2", "byte-level BPE", DECODER_TASKS, qwen2),
    )
}


def build(family: str, texts: Sequence[str], directory: Path) -> Path:
    """Build `family`'s tiny model into `directory` (the tokenizer's training files stay out of the folder)."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    try:
        return FAMILIES[family].build(texts, directory)
    finally:
        shutil.rmtree(directory / "_tok", ignore_errors=True)


TASK_COLUMNS = {
    "sequence_classification": "classification",
    "token_classification": "NER",
    "question_answering": "QA",
    "masked_language_modeling": "fill-mask",
    "language_modeling": "causal LM",
    "summarization": "summarization",
    "translation": "translation",
}


def readme_table() -> str:
    """The README's table of tested backbone families (checked against `FAMILIES` by the tests)."""
    from adapt.tasks import get_task

    head = ["family", "model type", "tokenizer", *TASK_COLUMNS.values(), "LoRA", "int8", "ONNX"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in FAMILIES.values():
        copies = {c for t in f.tasks for c in get_task(t).fast_copies}
        if f.tasks == DECODER_TASKS:
            copies.discard("onnx")  # refused: the exporter cannot trace decoder causal masks
        cells = ["✓" if task in f.tasks else "" for task in TASK_COLUMNS]
        cells += ["✓", "✓" if "int8" in copies else "", "✓" if "onnx" in copies else ""]
        rows.append("| " + " | ".join([f.name, f"`{f.model_type}`", f.tokenizer_kind, *cells]) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(readme_table())  # noqa: T201
