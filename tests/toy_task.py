"""A toy task declared in one file: is a text written in upper case?

Registering it (`adapt.tasks.register("tests.toy_task")`, or `ADAPT_TASK_MODULES=tests.toy_task` for the CLI
and the server) makes it trainable, predictable, servable and reachable from `adapt tune --task upper` with no
edit anywhere else. Its labels come from the text itself, so a data file needs only a `text` column.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapt.data import LoadOptions
from adapt.inference import TEXT
from adapt.options import Option
from adapt.tasks.base import TaskSpec
from adapt.tasks.sequence_classification import (
    EasySequenceClassifier,
    HFClassifier,
    SequenceClassificationDatasets,
    SequenceClassificationTuner,
)

TASK = "upper_case"


def _label(batch: dict[str, list[Any]], text_col: str) -> dict[str, list[str]]:
    return {"label": ["upper" if t.isupper() else "lower" for t in batch[text_col]]}


class UpperCaseDatasets(SequenceClassificationDatasets):
    """Texts labelled `upper` or `lower` by their own case."""

    columns: ClassVar[tuple[Option, ...]] = (Option("text_col", str, "text", "column of the texts", "text"),)
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def _from_splits(  # type: ignore[override]
        cls, train: Any, valid: Any, tokenizer_name: str | None, load: LoadOptions, text_col: str = "text"
    ) -> UpperCaseDatasets:
        train, valid = (d.map(_label, batched=True, fn_kwargs={"text_col": text_col}) for d in (train, valid))
        return super()._from_splits(train, valid, tokenizer_name, load, text_col=text_col, label_col="label")  # type: ignore[return-value]


class UpperCaseTuner(SequenceClassificationTuner):
    """Fine-tune an upper-case detector."""

    task = TASK


class EasyUpperCase(EasySequenceClassifier):
    """`is_upper(text, model)`: the same JSON as `tag_text`."""

    task = TASK

    def is_upper(self, text: Any, model_name_or_path: Any, **kwargs: Any) -> dict[str, Any]:
        return self.tag_text(text, model_name_or_path, **kwargs)


TASKS = (
    TaskSpec(
        name=TASK,
        summary="is a text written in upper case?",
        aliases=("upper",),
        datasets=UpperCaseDatasets,
        tuner=UpperCaseTuner,
        easy=EasyUpperCase,
        predictor=HFClassifier,
        fields=TEXT,
        auto_class="AutoModelForSequenceClassification",
        heads=("ForSequenceClassification",),  # plain folders match the built-in classifier first
        verb="is_upper",
        metrics=("accuracy", "f1_macro"),
        fast_copies=frozenset({"int8"}),
    ),
)
