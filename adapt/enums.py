"""String enums for the choices users pass by name: `Strategy`, `DetailLevel`, `LongText`."""

from __future__ import annotations

from enum import Enum, EnumMeta
from .errors import InvalidChoiceError, closest

__all__ = ["ChoiceEnum", "DetailLevel", "LongText", "Strategy"]


def _norm(s: str) -> str:
    return s.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


class _ChoiceMeta(EnumMeta):
    """`dir(Strategy)` lists the members and the enum's own helpers, not every `str` method."""

    def __dir__(cls) -> list[str]:
        own = {n for k in cls.__mro__ if k not in (str, object, Enum) for n in vars(k) if not n.startswith("_")}
        return sorted(set(cls.__members__) | {n for n in own if n not in cls.__members__ and n != "mro"})


class ChoiceEnum(str, Enum, metaclass=_ChoiceMeta):
    """A `str` enum that accepts member names, values or aliases in any case, and suggests the closest on error.

    A member equals its value and its aliases as plain strings (`Strategy.OneCycle == "fit_one_cycle"`, AdaptNLP's
    value); it hashes as its value, so dictionaries keyed by members are found by value.
    """

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Enum):
            return self is other
        if not isinstance(other, str):
            return NotImplemented
        return other == self.value or self.aliases().get(other) == self.value

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.value)

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Extra accepted spellings -> member value (e.g. AdaptNLP's names); none by default."""
        return {}

    @classmethod
    def _missing_(cls, value: object) -> ChoiceEnum:
        if isinstance(value, str):
            key = _norm(value)
            aliases = {_norm(k): v for k, v in cls.aliases().items()}
            for member in cls:
                if key in (_norm(member.name), _norm(member.value)) or aliases.get(key) == member.value:
                    return member
        raise InvalidChoiceError(cls.invalid_message(value))

    @classmethod
    def invalid_message(cls, value: object) -> str:
        """`'OneCycel' is not a valid Strategy. Did you mean 'OneCycle'? Valid: OneCycle ('one_cycle'), ...`."""
        names = [m.name for m in cls] + [m.value for m in cls]
        guess = closest(str(value), names) if isinstance(value, str) else None
        if guess is not None:
            guess = cls(guess).name
        hint = f" Did you mean {guess!r}?" if guess else ""
        valid = ", ".join(f"{m.name} ({m.value!r})" for m in cls)
        return f"{value!r} is not a valid {cls.__name__}.{hint} Valid: {valid}."

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

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """AdaptNLP named the policies by their fastai methods."""
        return {"fit_one_cycle": "one_cycle", "fit_flat_cos": "flat_cos", "fit_sgdr": "sgdr", "fit": "constant"}


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
