"""The fastai way: a user's own `Learner` over adapt's dataloaders, with adapt's Hugging Face callback, trains exactly
as `Tuner.tune` does, because the Tuner builds its Learner the same way."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from adapt.tasks import get_task


def _seeded(dls: Any) -> None:
    """The same random state for both runs at the start of training (dropout, and the loader's own shuffling)."""
    from adapt import set_seed

    set_seed(1)
    dls.train.rng = random.Random(1)


def _users_learner(dls: Any, folder: Any, loss_func: Any) -> Any:
    """What a fastai user writes: the transformers model, a loss, and adapt's callback."""
    from fastai.learner import Learner
    from transformers import AutoModelForSequenceClassification

    from adapt.engine import HFCallback

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return Learner(dls, model, loss_func=loss_func, cbs=[HFCallback()])


@pytest.fixture(scope="module")
def tuned(trained_tasks) -> tuple[Any, list[float], float]:
    """A tuner from the trained classifier, tuned one epoch at 1e-4: its per-batch losses and validation loss."""
    base, folder = trained_tasks["sequence_classification"]
    dls = base.datasets.dataloaders(batch_size=8)
    tuner = get_task("sequence_classification").tuner(dls, str(folder))
    _seeded(dls)
    tuner.tune(1, lr=1e-4)
    train_losses = [loss for _, loss in tuner._losses[0]]  # as recorded at the end of the fit, per batch
    return folder, train_losses, tuner.history()[-1]["valid_loss"]


def test_a_users_learner_with_the_hf_callback_trains_exactly_as_tune(trained_tasks, tuned) -> None:
    from fastai.losses import CrossEntropyLossFlat

    base, _ = trained_tasks["sequence_classification"]
    folder, tuner_losses, tuner_valid = tuned
    dls = base.datasets.dataloaders(batch_size=8)
    learn = _users_learner(dls, folder, CrossEntropyLossFlat())
    _seeded(dls)
    learn.fit_one_cycle(1, 1e-4)
    losses = [float(x) for x in learn.recorder.losses]
    assert len(losses) == len(tuner_losses) > 1
    assert losses == pytest.approx(tuner_losses, rel=1e-5)
    assert float(learn.recorder.values[-1][1]) == pytest.approx(tuner_valid, rel=1e-5)
    assert learn.hf_model is learn.model.hf_model  # the transformers model stays reachable


def test_the_models_own_loss_trains_the_same_and_a_users_loss_replaces_it(trained_tasks, tuned) -> None:
    from adapt.engine import HFLoss

    base, _ = trained_tasks["sequence_classification"]
    folder, tuner_losses, _ = tuned
    dls = base.datasets.dataloaders(batch_size=8)
    own = _users_learner(dls, folder, HFLoss())  # BERT's classifier computes cross-entropy itself
    _seeded(dls)
    own.fit_one_cycle(1, 1e-4)
    assert [float(x) for x in own.recorder.losses] == pytest.approx(tuner_losses, rel=1e-4)

    calls: list[int] = []

    def doubled(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        calls.append(len(labels))
        return 2 * torch.nn.functional.cross_entropy(logits, labels)

    dls = base.datasets.dataloaders(batch_size=8)
    mine = _users_learner(dls, folder, doubled)
    _seeded(dls)
    mine.fit_one_cycle(1, 1e-4)
    assert calls and float(mine.recorder.losses[0]) == pytest.approx(2 * tuner_losses[0], rel=1e-4)


def test_the_models_own_loss_without_the_callback_is_a_specific_error() -> None:
    from adapt.engine import HFLoss
    from adapt.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"cbs=\[HFCallback\(\)\]"):
        HFLoss()(torch.zeros(2, 3), torch.zeros(2))
