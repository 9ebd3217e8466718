"""Hyperparameter search with Optuna: `tuner.search(n_trials)` runs short `tune` calls on the same splits, each from
the same starting weights and seed, and keeps the settings whose validation `monitor` was best; `tuner.tune_best()`
trains with them, and the training record and the card say where they came from.

The default space: learning rate (log scale; higher for a LoRA adapter), epochs (1 to `max_epochs`), batch size,
weight decay, and whatever the task adds (class weights for classification). Trials run one after another in this
process. To spread them over several processes or machines, give every one the same `storage=` (an Optuna RDB URL such
as a database shared by the workers) and `study_name=`: Optuna hands each worker its next trial.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Any

from .errors import InvalidChoiceError, InvalidInputError, MissingDependencyError, install_hint, is_count, unknown_name

if TYPE_CHECKING:
    from .tuner import Tuner

logger = logging.getLogger(__name__)

__all__ = ["SearchResult", "default_space", "search", "task_settings", "tune_call"]

# a setting's range: a list is a choice, a (low, high) pair of ints an integer range, of floats a float range (on a
# log scale for `lr`, and wherever high/low spans two decades or more)
Space = dict[str, Any]
SETTINGS = ("lr", "epochs", "batch_size", "weight_decay")


@dataclasses.dataclass
class SearchResult:
    """The outcome of `tuner.search`: the best trial's settings and value, and every trial."""

    monitor: str
    direction: str
    best: dict[str, Any]
    best_value: float | None  # None when no trial gave a finite value
    trials: list[dict[str, Any]]
    seed: int = 0  # every trial started from it; `tune_best` too, so it repeats the best trial
    tune_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # what every trial's `tune` got besides

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: what the training record keeps (trials included)."""
        return dataclasses.asdict(self)

    def tune_call(self) -> dict[str, Any]:
        """The keywords of `tune` for the best settings (batch size and task settings are set on the tuner)."""
        return tune_call(self.best, self.tune_kwargs)


def tune_call(settings: dict[str, Any], tune_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`tune`'s keywords for a trial: the searched epochs, lr and weight decay over the fixed `tune_kwargs`."""
    call = {"epochs": 1, "lr": None, **tune_kwargs}
    if "epochs" in settings:
        call["epochs"] = int(settings["epochs"])
    if "lr" in settings:
        call["lr"] = float(settings["lr"])
    if "weight_decay" in settings:
        call["wd"] = float(settings["weight_decay"])
    return call


def task_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings the tuner itself holds (batch size, class weights), not `tune`'s."""
    return {k: v for k, v in settings.items() if k not in ("epochs", "lr", "weight_decay")}


def default_space(tuner: Tuner, max_epochs: int) -> Space:
    """The space searched when none is given: the task's own additions come from `tuner._search_space()`."""
    lr = (1e-4, 3e-3) if tuner.is_adapter else (1e-5, 3e-4)
    return {"lr": lr, "epochs": (1, max(1, max_epochs)), "batch_size": [8, 16, 32], "weight_decay": (0.0, 0.1),
            **tuner._search_space()}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise MissingDependencyError(f"Hyperparameter search needs Optuna: {install_hint('search')}.") from e
    return optuna


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, list) and spec:
        if _unhashable(spec):  # Optuna's choices are plain values: a list of class weights is chosen by its index
            return spec[trial.suggest_categorical(name, list(range(len(spec))))]
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(v, (int, float)) for v in spec) and spec[0] <= spec[1]:
        low, high = spec
        if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
            return trial.suggest_int(name, low, high)
        log = low > 0 and (name == "lr" or high / low >= 100)
        return trial.suggest_float(name, float(low), float(high), log=log)
    raise InvalidInputError(f"search space[{name!r}] must be a list of choices or a (low, high) range, got {spec!r}.")


def _settings(params: dict[str, Any], space: Space) -> dict[str, Any]:
    """A finished trial's settings from Optuna's params (an index stands for an unhashable choice)."""
    return {k: space[k][v] if isinstance(space[k], list) and _unhashable(space[k]) else v for k, v in params.items()}


def _unhashable(choices: list[Any]) -> bool:
    return any(not isinstance(c, (str, int, float, bool, type(None))) for c in choices)


def check_space(space: Space, known: list[str]) -> None:
    for name in space:
        if name not in known:
            raise InvalidChoiceError(unknown_name("search setting", name, known))


def search(
    tuner: Tuner,
    n_trials: int,
    space: Space | None,
    monitor: str,
    max_epochs: int,
    seed: int,
    study: dict[str, Any],
    tune_kwargs: dict[str, Any],
) -> SearchResult:
    """Optimise `monitor` over `space` (the default one when None) with Optuna's TPE sampler (seeded; `study` holds
    `storage`, `study_name` and `timeout`); every trial starts from the weights the tuner had. The tuner's weights,
    record, history and the task's searched state are put back after."""
    from .fitting import lower_is_better

    optuna = _optuna()
    if not is_count(n_trials):
        raise InvalidInputError(f"n_trials must be a positive integer, got {n_trials!r}.")
    wanted = default_space(tuner, max_epochs) if space is None else dict(space)
    check_space(wanted, [*SETTINGS, *tuner._searchable()])
    direction = "minimize" if lower_is_better(monitor) else "maximize"
    trials: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        settings = {name: _suggest(trial, name, spec) for name, spec in wanted.items()}
        tuner.model.load_state_dict(start)
        metrics = _trial(tuner, settings, seed, tune_kwargs)
        if monitor not in metrics:
            raise InvalidChoiceError(unknown_name("monitor", monitor, list(metrics)))
        value = float(metrics[monitor])
        trials.append({"number": trial.number, "settings": settings, "value": value if math.isfinite(value) else None})
        logger.info("search trial %d: %s=%.4g with %s", trial.number, monitor, value, settings)
        return value if math.isfinite(value) else (math.inf if direction == "minimize" else -math.inf)

    start = copy.deepcopy(tuner.model.state_dict())
    kept = {name: copy.deepcopy(getattr(tuner, name)) for name in tuner._search_state() if hasattr(tuner, name)}
    loss_func = copy.deepcopy(tuner.learn.loss_func)
    sampler = optuna.samplers.TPESampler(seed=seed)
    runs = optuna.create_study(direction=direction, sampler=sampler, storage=study["storage"],
                               study_name=study["study_name"], load_if_exists=study["storage"] is not None)
    try:
        runs.optimize(objective, n_trials=n_trials, timeout=study["timeout"])
    finally:
        tuner.model.load_state_dict(start)
        for name, value in kept.items():
            setattr(tuner, name, value)
        tuner.learn.loss_func = loss_func
        restart(tuner, seed)  # no optimizer state of the last trial
    # with a shared storage, the best trial may be another worker's
    best_value = float(runs.best_value)
    return SearchResult(monitor, direction, _settings(runs.best_trial.params, wanted),
                        best_value if math.isfinite(best_value) else None, trials, seed, dict(tune_kwargs))


def _trial(tuner: Tuner, settings: dict[str, Any], seed: int, tune_kwargs: dict[str, Any]) -> dict[str, float]:
    undo = tuner._apply_settings(task_settings(settings))
    try:
        restart(tuner, seed)
        call = tune_call(settings, tune_kwargs)
        return tuner.tune(call.pop("epochs"), **call)
    finally:
        tuner._apply_settings(undo)


def restart(tuner: Tuner, seed: int) -> None:
    """Start training as from scratch: seeded, a new optimizer (with the same layer groups frozen), and the
    training loader's own shuffling RNG seeded too (fastai's loaders draw their order from an RNG of their own,
    which runs on across runs)."""
    import random

    from .utils import set_seed

    frozen = tuner._frozen_groups()
    set_seed(seed)
    tuner.learn.opt = None
    if frozen:
        tuner.learn.freeze_to(frozen)
    if hasattr(tuner.dls.train, "rng"):
        tuner.dls.train.rng = random.Random(seed)
