"""What each of blurr's module paths exports on adapt (`adapt.blurr.<path>` for `blurr.<path>`)."""

from __future__ import annotations

from typing import Any

from . import _data, _learner, _utils

UTILS = ("Singleton", "str_to_type", "print_versions", "set_seed", "PreCalculatedLoss", "PreCalculatedCrossEntropyLoss",
         "PreCalculatedBCELoss", "PreCalculatedMSELoss", "MultiTargetLoss",
         # 2020 and 2021
         "str_to_class", "ModelHelper", "BLURR_MODEL_HELPER", "HF_ARCHITECTURES", "HF_TASKS_ALL", "HF_TASKS_AUTO",
         "BlurrUtil", "BLURR", "HF_TASKS", "HF_PreCalculatedLoss")
TEXT_UTILS = ("get_hf_objects", "BlurrText", "NLP", "HF_TASKS", "HF_ARCHITECTURES")

PATHS: dict[str, tuple[str, ...]] = {
    "utils": UTILS,
    "callbacks": (),
    # 1.0
    "text.utils": TEXT_UTILS,
    "text.data.core": ("Preprocessor", "ClassificationPreprocessor", "TextInput", "BatchTokenizeTransform",
                       "BatchDecodeTransform", "blurr_sort_func", "TextBlock", "get_blurr_tfm", "first_blurr_tfm"),
    "text.data.language_modeling": ("LMType", "BaseLMStrategy", "CausalLMStrategy", "BertMLMStrategy"),
    "text.data.question_answering": ("QAPreprocessor",),
    "text.data.token_classification": (),
    "text.data.seq2seq.core": (),
    "text.data.seq2seq.summarization": (),
    "text.data.seq2seq.translation": (),
    "text.modeling.core": ("blurr_splitter", "BaseModelWrapper", "BaseModelCallback", "Blearner",
                           "BlearnerForSequenceClassification"),
    "text.modeling.language_modeling": ("BlearnerForLM",),
    "text.modeling.question_answering": ("QAModelCallback", "BlearnerForQuestionAnswering"),
    "text.modeling.token_classification": ("calculate_token_class_metrics", "BlearnerForTokenClassification"),
    "text.modeling.seq2seq.core": ("blurr_seq2seq_splitter",),
    "text.modeling.seq2seq.summarization": ("BlearnerForSummarization",),
    "text.modeling.seq2seq.translation": ("BlearnerForTranslation",),
    # 2020 and mid-2021
    "data.core": ("HF_BaseInput", "HF_BeforeBatchTransform", "HF_AfterBatchTransform", "HF_TextBlock", "get_blurr_tfm",
                  "first_blurr_tfm", "blurr_sort_func"),
    "data.language_modeling": ("LMType", "LMStrategy", "CausalLMStrategy", "BertMLMStrategy"),
    "data.question_answering": (),
    "data.token_classification": (),
    "data.seq2seq.core": (),
    "data.seq2seq.summarization": (),
    "data.seq2seq.translation": (),
    "modeling.core": ("hf_splitter", "HF_BaseModelWrapper", "HF_PreCalculatedLoss", "HF_BaseModelCallback", "Blearner",
                      "BlearnerForSequenceClassification"),
    "modeling.language_modeling": ("BlearnerForLM",),
    "modeling.question_answering": ("HF_QstAndAnsModelCallback", "MultiTargetLoss", "BlearnerForQuestionAnswering"),
    "modeling.token_classification": ("calculate_token_class_metrics", "BlearnerForTokenClassification"),
    "modeling.seq2seq.core": ("seq2seq_splitter",),
    "modeling.seq2seq.summarization": ("BlearnerForSummarization",),
    "modeling.seq2seq.translation": ("BlearnerForTranslation",),
}


def _union(prefix: str, *extra: tuple[str, ...]) -> tuple[str, ...]:
    names = [n for path, ns in PATHS.items() if path.startswith(prefix) for n in ns]
    return tuple(dict.fromkeys([*names, *(n for e in extra for n in e)]))


# transformers' auto classes, which blurr's examples got from `from transformers import *` (that line fails on
# transformers 4.5x without torchvision, so the `all` modules bring what the examples use)
TRANSFORMERS = ("AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForSequenceClassification",
                "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForCausalLM",
                "AutoModelForMaskedLM", "AutoModelForSeq2SeqLM", "PreTrainedModel", "PretrainedConfig")
PATHS["text.data.all"] = _union("text.data.", UTILS, TEXT_UTILS, TRANSFORMERS)
PATHS["text.modeling.all"] = _union("text.modeling.", UTILS, TEXT_UTILS, TRANSFORMERS)
PATHS["data.all"] = _union("data.", UTILS, TRANSFORMERS)
PATHS["modeling.all"] = _union("modeling.", UTILS, TRANSFORMERS)


def exports(module: str) -> dict[str, Any]:
    """The names of `adapt.blurr.<path>` (`module` is its `__name__`) and their objects."""
    path = module.removeprefix("adapt.blurr.").removesuffix(".__init__")
    import transformers

    found = {}
    for name in PATHS[path]:
        for source in (_utils, _data, _learner, transformers):
            if hasattr(source, name):
                found[name] = getattr(source, name)
                break
        else:
            raise AttributeError(f"adapt.blurr.{path} declares {name!r}, which adapt.blurr does not define")
    return found
