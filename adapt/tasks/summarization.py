"""Summarization: `SummarizationDatasets`, `SummarizationTuner` (ROUGE from `rouge-score`) and `EasySummarizer`.

Built on the shared encoder-decoder engine in `adapt.tasks.seq2seq`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import InvalidInputError
from .seq2seq import EasySeq2SeqBase, HFSeq2SeqGenerator, Seq2SeqDatasets, Seq2SeqTuner, seq2seq_task

TASK = "summarization"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

__all__ = ["TASKS", "EasySummarizer", "HFSummarizer", "SummarizationDatasets", "SummarizationTuner", "rouge_scores"]


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (percent) from the `rouge-score` package, with stemming."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references) or not predictions:
        raise InvalidInputError("rouge_scores needs as many predictions as references, and at least one.")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for pred, ref in zip(predictions, references, strict=True):
        scores = scorer.score(ref, pred)
        for k in ROUGE_TYPES:
            totals[k] += scores[k].fmeasure
    return {k: 100.0 * v / len(predictions) for k, v in totals.items()}


class SummarizationDatasets(Seq2SeqDatasets):
    """Documents (`text`) and their summaries (`summary`), tokenized for an encoder-decoder model.

    Example:
        >>> dsets = SummarizationDatasets.from_dfs(df, model_path, source_col="abstract", target_col="summary",
        ...                                        max_source_length=256, max_target_length=64)
    """

    default_cols: ClassVar[tuple[str, str]] = ("text", "summary")


class HFSummarizer(HFSeq2SeqGenerator):
    output_key = "summaries"


class SummarizationTuner(Seq2SeqTuner):
    """Fine-tune a summarizer (BART, T5, or BERT2BERT warm-started from an encoder); ROUGE-1/2/L every epoch.

    Example:
        >>> tuner = SummarizationTuner(dsets.dataloaders(batch_size=8), "facebook/bart-base")
        >>> tuner.tune(3, lr=5e-5)
        >>> tuner.predict("A long article ...", num_beams=4)
    """


    @staticmethod
    def score_texts(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        return rouge_scores(predictions, references)


class EasySummarizer(EasySeq2SeqBase):
    """Summarize texts with any encoder-decoder folder or hub model (adapt save, BART, T5, ...).

    Example:
        >>> EasySummarizer().summarize(["A long article ..."], "models/summarizer", num_tokens_to_produce=60)
        {'sentences': ['A long article ...'], 'summaries': ['...']}
    """


    summarize = EasySeq2SeqBase.run


TASKS = (
    seq2seq_task(
        TASK,
        "condense a text into a summary (encoder-decoder models)",
        ("summarize", "summary"),
        (SummarizationDatasets, SummarizationTuner, EasySummarizer, HFSummarizer),
        "summarize",
        ROUGE_TYPES,
    ),
)
