"""String enums for the choices users pass by name: `Strategy`, `DetailLevel`, `LongText`."""

from __future__ import annotations

from enum import Enum

from .errors import InvalidChoiceError

__all__ = ["Strategy", "DetailLevel", "LongText"]


def _norm(s: str) -> str:
    return s.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


class ChoiceEnum(str, Enum):
    """A `str` enum that accepts member names or values in any case, and lists the valid ones on error."""

    @classmethod
    def _missing_(cls, value: object) -> ChoiceEnum:
        if isinstance(value, str):
            key = _norm(value)
            for member in cls:
                if key in (_norm(member.name), _norm(member.value)):
                    return member
        choices = ", ".join(repr(m.value) for m in cls)
        raise InvalidChoiceError(f"{value!r} is not a valid {cls.__name__}. Valid choices: {choices}.")

    def __str__(self) -> str:
        return self.value


class Strategy(ChoiceEnum):
    """Training policy; each member names a fastai fit method. `epochs` always means total epochs.

    - `OneCycle` -> `Learner.fit_one_cycle`
    - `CosineAnnealing` -> `Learner.fit_flat_cos` (flat, then cosine decay)
    - `SGDR` -> `Learner.fit_sgdr` with cycles chosen so that they add up to `epochs` exactly:
      the largest `n` such that `2**n - 1` divides `epochs`, with `cycle_len = epochs // (2**n - 1)`
      and `cycle_mult=2` (3 epochs = cycles of 1+2, 7 = 1+2+4, 6 = 2+4; 5 = one cycle of 5).
    - `Constant` -> `Learner.fit` (constant learning rate)
    """

    OneCycle = "one_cycle"
    CosineAnnealing = "flat_cos"
    SGDR = "sgdr"
    Constant = "constant"


class DetailLevel(ChoiceEnum):
    """How much an inference result contains: Low < Medium < High."""

    Low = "low"
    Medium = "medium"
    High = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value)

    def at_least(self, other: DetailLevel | str) -> bool:
        """True when this level includes everything `other` includes."""
        return self.rank >= DetailLevel(other).rank


class LongText(ChoiceEnum):
    """What inference does with text longer than the model's maximum length."""

    Truncate = "truncate"
    Window = "window"
