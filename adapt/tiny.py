"""Tiny models for tests and demos: tokenizers trained on your text, a small GPT-2, a small BART and a small BERT.

Everything here runs offline in seconds on a CPU. Use it to test code that needs a causal language model when
no pretrained one can be downloaded:

    >>> tok = train_bpe_tokenizer(texts, vocab_size=2000)
    >>> model = tiny_causal_lm(tok)          # ~0.7M parameters, random weights
    >>> save_tiny_causal_lm(texts, "models/tiny-gpt2")   # both, as a folder any adapt or HF API can load
    >>> save_tiny_seq2seq(texts, "models/tiny-bart")     # an encoder-decoder for summarization or translation
    >>> save_tiny_encoder(texts, "models/tiny-bert")     # a BERT encoder (MLM head) for classification, NER, QA, MLM
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "EOS_TOKEN",
    "PAD_TOKEN",
    "save_tiny_causal_lm",
    "save_tiny_encoder",
    "save_tiny_seq2seq",
    "tiny_causal_lm",
    "tiny_encoder",
    "tiny_seq2seq",
    "train_bpe_tokenizer",
    "train_wordpiece_tokenizer",
]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<pad>"


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, model_max_length: int = 128, min_frequency: int = 2, add_eos: bool = False
) -> Any:
    """A fast byte-level BPE tokenizer (GPT-2 style) trained on `texts`, with `<|endoftext|>` as BOS/EOS and a pad token.

    Its model inputs are `input_ids` and `attention_mask` only, as `generate` expects of decoder-only models.
    `add_eos=True` ends every encoded text with EOS, as encoder-decoder models need (targets must teach stopping).
    """
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        (t for t in texts if isinstance(t, str) and t.strip()),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        show_progress=False,
    )
    if add_eos:
        eos = (EOS_TOKEN, bpe.token_to_id(EOS_TOKEN))
        template = processors.TemplateProcessing(
            single=f"$A {EOS_TOKEN}", pair=f"$A {EOS_TOKEN} $B {EOS_TOKEN}", special_tokens=[eos]
        )
        bpe._tokenizer.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=True), template])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "attention_mask"],
    )


def tiny_causal_lm(
    tokenizer: Any, n_layer: int = 2, n_head: int = 4, n_embd: int = 128, n_positions: int | None = None, seed: int = 0
) -> Any:
    """A randomly initialised GPT-2 sized to `tokenizer` (special token ids included); ~0.7M parameters by default."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    n_pos = n_positions or min(int(tokenizer.model_max_length), 1024)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_pos,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


def save_tiny_causal_lm(
    texts: Iterable[str], directory: str | os.PathLike[str], vocab_size: int = 2000, **model_kwargs: Any
) -> Path:
    """Train a tokenizer on `texts`, build `tiny_causal_lm` and save both (atomically) as a transformers folder."""
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab_size)
    return _save(tiny_causal_lm(tokenizer, **model_kwargs), tokenizer, directory)


def _save(model: Any, tokenizer: Any, directory: str | os.PathLike[str]) -> Path:
    from .utils import atomic_directory

    with atomic_directory(directory) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(directory)


def tiny_seq2seq(
    tokenizer: Any,
    d_model: int = 64,
    layers: int = 1,
    heads: int = 4,
    max_positions: int | None = None,
    dropout: float = 0.0,
    seed: int = 0,
) -> Any:
    """A randomly initialised BART sized to `tokenizer` (EOS starts decoding, as in BART); ~0.2M parameters by default.

    One layer each side learns copy-like tasks (e.g. `adapt.synthetic.cipher_translation`) in a few hundred steps.
    """
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=max_positions or min(int(tokenizer.model_max_length), 1024),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=pad,
        decoder_start_token_id=eos,
        forced_eos_token_id=eos,
        forced_bos_token_id=None,
        dropout=dropout,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BartForConditionalGeneration(config)


def save_tiny_seq2seq(
    texts: Iterable[str],
    directory: str | os.PathLike[str],
    vocab_size: int = 2000,
    model_max_length: int = 256,
    **model_kwargs: Any,
) -> Path:
    """Train an EOS-adding tokenizer on `texts`, build `tiny_seq2seq` and save both (atomically) as a transformers folder."""
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab_size, model_max_length=model_max_length, add_eos=True)
    return _save(tiny_seq2seq(tokenizer, **model_kwargs), tokenizer, directory)


def train_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, model_max_length: int = 128, lowercase: bool = True
) -> Any:
    """A fast WordPiece tokenizer (BERT style: [CLS], [SEP], [PAD], [MASK], [UNK]) trained on `texts`."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase)
    wp.train_from_iterator((t for t in texts if isinstance(t, str) and t.strip()), vocab_size=vocab_size, show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=wp._tokenizer,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        model_max_length=model_max_length,
    )


def tiny_encoder(tokenizer: Any, hidden: int = 64, layers: int = 2, heads: int = 2, seed: int = 0) -> Any:
    """A randomly initialised BERT with a masked-LM head sized to `tokenizer`; ~0.3M parameters by default.

    Any task with an encoder head (classification, NER, QA) starts from it, and it trains as a masked LM.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=min(int(tokenizer.model_max_length), 512),
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BertForMaskedLM(config)


def save_tiny_encoder(
    texts: Iterable[str], directory: str | os.PathLike[str], vocab_size: int = 2000, lowercase: bool = True, **model_kwargs: Any
) -> Path:
    """Train a WordPiece tokenizer on `texts`, build `tiny_encoder` and save both (atomically) as a transformers folder."""
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size, lowercase=lowercase)
    return _save(tiny_encoder(tokenizer, **model_kwargs), tokenizer, directory)
