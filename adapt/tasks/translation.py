"""Translation: `TranslationDatasets`, `TranslationTuner` (BLEU from `sacrebleu`) and `EasyTranslator`.

Built on the shared encoder-decoder engine in `adapt.tasks.seq2seq`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import InvalidInputError
from .seq2seq import EasySeq2SeqBase, HFSeq2SeqGenerator, Seq2SeqDatasets, Seq2SeqTuner, seq2seq_task

TASK = "translation"

__all__ = ["TASKS", "EasyTranslator", "HFTranslator", "TranslationDatasets", "TranslationTuner", "bleu_score"]


def bleu_score(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu defaults: 13a tokenisation, exponential smoothing), 0-100, one reference per source."""
    import sacrebleu

    if len(predictions) != len(references) or not predictions:
        raise InvalidInputError("bleu_score needs as many predictions as references, and at least one.")
    return {"bleu": float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)}


class TranslationDatasets(Seq2SeqDatasets):
    """Source sentences and their translations (`source`, `target`), tokenized for an encoder-decoder model.

    Example:
        >>> dsets = TranslationDatasets.from_dfs(df, "Helsinki-NLP/opus-mt-en-de", source_col="en", target_col="de")
    """

    default_cols: ClassVar[tuple[str, str]] = ("source", "target")


class HFTranslator(HFSeq2SeqGenerator):
    output_key = "translations"


class TranslationTuner(Seq2SeqTuner):
    """Fine-tune a translation model (Marian, T5, BART, or BERT2BERT warm-started from an encoder); BLEU every epoch.

    Example:
        >>> tuner = TranslationTuner(dsets.dataloaders(batch_size=16), "Helsinki-NLP/opus-mt-en-de")
        >>> tuner.tune(2, lr=5e-5)
    """


    @staticmethod
    def score_texts(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        return bleu_score(predictions, references)


class EasyTranslator(EasySeq2SeqBase):
    """Translate texts with any encoder-decoder folder or hub model (adapt save, Marian, T5, ...).

    Example:
        >>> EasyTranslator().translate(["the market rose"], "models/translator")
        {'sentences': ['the market rose'], 'translations': ['...']}
    """


    translate = EasySeq2SeqBase.run  # a T5 model takes e.g. prefix="translate English to German: "


TASKS = (
    seq2seq_task(
        TASK,
        "translate texts (encoder-decoder models)",
        ("translate", "mt"),
        (TranslationDatasets, TranslationTuner, EasyTranslator, HFTranslator),
        "translate",
        ("bleu",),
    ),
)
