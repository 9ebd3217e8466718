"""adapt: fine-tune and serve Hugging Face transformers with fastai.

`import adapt` is cheap: torch, transformers, fastai, flair and pandas load only when a name that needs
them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # enums and errors (light)
    "Strategy": "adapt.enums",
    "DetailLevel": "adapt.enums",
    "LongText": "adapt.enums",
    "AdaptError": "adapt.errors",
    "InvalidChoiceError": "adapt.errors",
    "InvalidInputError": "adapt.errors",
    "UnknownLabelError": "adapt.errors",
    "NumClassesError": "adapt.errors",
    "EmptyDatasetError": "adapt.errors",
    "MissingColumnError": "adapt.errors",
    "ModelNotFoundError": "adapt.errors",
    "CorruptModelError": "adapt.errors",
    "WrongTaskError": "adapt.errors",
    "DecodeError": "adapt.errors",
    # utilities
    "set_seed": "adapt.utils",
    "random_split": "adapt.data",
    # data and training
    "TaskDatasets": "adapt.data",
    "AdaptiveDataLoaders": "adapt.engine",
    "Tuner": "adapt.tuner",
    "SequenceClassificationDatasets": "adapt.tasks.sequence_classification",
    "SequenceClassificationTuner": "adapt.tasks.sequence_classification",
    "parent_label": "adapt.tasks.sequence_classification",
    "TokenClassificationDatasets": "adapt.tasks.token_classification",
    "TokenClassificationTuner": "adapt.tasks.token_classification",
    "LanguageModelDatasets": "adapt.tasks.language_modeling",
    "LanguageModelTuner": "adapt.tasks.language_modeling",
    "QuestionAnsweringDatasets": "adapt.tasks.question_answering",
    "QuestionAnsweringTuner": "adapt.tasks.question_answering",
    "SummarizationDatasets": "adapt.tasks.summarization",
    "SummarizationTuner": "adapt.tasks.summarization",
    "TranslationDatasets": "adapt.tasks.translation",
    "TranslationTuner": "adapt.tasks.translation",
    # inference
    "EasyTokenTagger": "adapt.tasks.token_classification",
    "EasyTextGenerator": "adapt.tasks.language_modeling",
    "EasyFillMask": "adapt.tasks.language_modeling",
    "EasyWordEmbeddings": "adapt.tasks.embeddings",
    "EasyStackedEmbeddings": "adapt.tasks.embeddings",
    "EasyDocumentEmbeddings": "adapt.tasks.embeddings",
    "Pooling": "adapt.tasks.embeddings",
    "EasySequenceClassifier": "adapt.tasks.sequence_classification",
    "EasyQuestionAnswering": "adapt.tasks.question_answering",
    "EasySummarizer": "adapt.tasks.summarization",
    "EasyTranslator": "adapt.tasks.translation",
    "ClassificationResults": "adapt.results",
}

__all__ = [
    "__version__",
    "AdaptError",
    "AdaptiveDataLoaders",
    "ClassificationResults",
    "CorruptModelError",
    "DecodeError",
    "DetailLevel",
    "EasyDocumentEmbeddings",
    "EasyFillMask",
    "EasyQuestionAnswering",
    "EasySequenceClassifier",
    "EasyStackedEmbeddings",
    "EasySummarizer",
    "EasyTextGenerator",
    "EasyTokenTagger",
    "EasyTranslator",
    "EasyWordEmbeddings",
    "EmptyDatasetError",
    "InvalidChoiceError",
    "InvalidInputError",
    "LanguageModelDatasets",
    "LanguageModelTuner",
    "LongText",
    "MissingColumnError",
    "ModelNotFoundError",
    "NumClassesError",
    "Pooling",
    "QuestionAnsweringDatasets",
    "QuestionAnsweringTuner",
    "SequenceClassificationDatasets",
    "SequenceClassificationTuner",
    "Strategy",
    "SummarizationDatasets",
    "SummarizationTuner",
    "TaskDatasets",
    "TokenClassificationDatasets",
    "TokenClassificationTuner",
    "TranslationDatasets",
    "TranslationTuner",
    "Tuner",
    "UnknownLabelError",
    "WrongTaskError",
    "parent_label",
    "random_split",
    "set_seed",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adapt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for IDEs and type checkers only
    from .data import TaskDatasets, random_split
    from .engine import AdaptiveDataLoaders
    from .enums import DetailLevel, LongText, Strategy
    from .errors import (
        AdaptError,
        CorruptModelError,
        DecodeError,
        EmptyDatasetError,
        InvalidChoiceError,
        InvalidInputError,
        MissingColumnError,
        ModelNotFoundError,
        NumClassesError,
        UnknownLabelError,
        WrongTaskError,
    )
    from .results import ClassificationResults
    from .tasks.embeddings import EasyDocumentEmbeddings, EasyStackedEmbeddings, EasyWordEmbeddings, Pooling
    from .tasks.language_modeling import EasyFillMask, EasyTextGenerator, LanguageModelDatasets, LanguageModelTuner
    from .tasks.question_answering import EasyQuestionAnswering, QuestionAnsweringDatasets, QuestionAnsweringTuner
    from .tasks.sequence_classification import (
        EasySequenceClassifier,
        SequenceClassificationDatasets,
        SequenceClassificationTuner,
        parent_label,
    )
    from .tasks.summarization import EasySummarizer, SummarizationDatasets, SummarizationTuner
    from .tasks.token_classification import EasyTokenTagger, TokenClassificationDatasets, TokenClassificationTuner
    from .tasks.translation import EasyTranslator, TranslationDatasets, TranslationTuner
    from .tuner import Tuner
    from .utils import set_seed
