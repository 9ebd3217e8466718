"""adapt's fastai-native layer: a `DataBlock` block for every task, the Hugging Face model callback, splitters,
prediction on a `Learner` through adapt's predictors, and the bridge from a fastai `Learner` to an adapt folder.

    from fastai.text.all import *
    from adapt.fastai import HFCallback, HFLoss, TaskBlock, hf_splitter, save

    dblock = DataBlock(blocks=TaskBlock("classification", tokenizer, "text", "label"), splitter=ColSplitter())
    dls = dblock.dataloaders(df, bs=16)
    learn = Learner(dls, model, loss_func=HFLoss(), cbs=[HFCallback()], splitter=hf_splitter)
    learn.fine_tune(2, 5e-5)
    learn.show_results()
    save(learn, "models/news")  # then EasySequenceClassifier, adapt predict, adapt serve, adapt export, Docker

Importing this module registers `show_batch`/`show_results` for `TaskBatch` with fastai's dispatch; it adds no
method to fastai's classes.
"""

from ..engine import HFCallback, HFLoss, HFModel
from .data import TaskBatch, TaskBlock, TaskDL, TaskRows, predicted_row
from .learner import hf_splitter, layer_splitter, predict, save, seq2seq_splitter, task_of, tuner_from_learner

__all__ = [
    "HFCallback",
    "HFLoss",
    "HFModel",
    "TaskBatch",
    "TaskBlock",
    "TaskDL",
    "TaskRows",
    "hf_splitter",
    "layer_splitter",
    "predict",
    "predicted_row",
    "save",
    "seq2seq_splitter",
    "task_of",
    "tuner_from_learner",
]
