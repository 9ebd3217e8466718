"""Declared options: one table per predictor, dataset constructor or tuner, read by Python, the CLI and REST.

An `Option` names a keyword, its accepted types, its default and a valid example. `check_options` refuses
unknown names the same way everywhere (with the closest match and the accepted list) and checks types;
`parse_cli_value` turns `--param key=value` text into a value of the declared type; `options_signature`
writes the declared keywords into a function's `inspect.signature`, so `help()` shows them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import InvalidInputError, InvalidOptionError, unknown_name

__all__ = ["Option", "check_options", "describe_options", "options_signature", "parse_cli_value"]


@dataclass(frozen=True)
class Option:
    """One keyword option: `kind` is a type, a tuple of types or a `ChoiceEnum`; `example` is a valid value."""

    name: str
    kind: Any
    default: Any = None
    help: str = ""
    example: Any = None
    nullable: bool = False  # None is accepted too (always, when the default is None)

    @property
    def kinds(self) -> tuple[Any, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def type_name(self) -> str:
        names = [k.__name__ for k in self.kinds]
        return " | ".join(names + (["None"] if self.default is None or self.nullable else []))

    def check(self, value: Any, where: str) -> Any:
        """The value, converted for enums; `InvalidInputError` naming the option when its type is wrong."""
        import numbers

        if value is None and (self.default is None or self.nullable):
            return None
        for kind in self.kinds:
            if isinstance(kind, type) and issubclass(kind, Enum):
                if isinstance(value, (str, kind)):
                    return kind(value)
                continue
            if isinstance(value, bool) and kind in (int, float):
                continue
            if kind is float and isinstance(value, numbers.Real):
                return float(value)
            if kind is int and isinstance(value, numbers.Integral):
                return int(value)
            if kind is list and (isinstance(value, tuple) or hasattr(value, "tolist")):
                return list(value.tolist() if hasattr(value, "tolist") else value)
            if isinstance(value, kind):
                return list(value) if kind in (list, tuple) else value
        raise InvalidOptionError(
            f"{self.name}{' for ' + where if where else ''} must be {self.type_name()}, got {type(value).__name__} {value!r:.60}."
        )


def check_options(given: Mapping[str, Any], declared: Sequence[Option], where: str = "", what: str = "option") -> dict[str, Any]:
    """Validate `given` against `declared`: unknown names and wrong types raise `InvalidOptionError`."""
    table = {o.name: o for o in declared}
    out: dict[str, Any] = {}
    for name, value in given.items():
        opt = table.get(name)
        if opt is None:
            raise InvalidOptionError(unknown_name(what, name, list(table), where))
        out[name] = opt.check(value, where)
    return out


def batch_size_option(own: int, default: int, options: dict[str, Any], spelling: str, key: str = "batch_size") -> int:
    """`batch_size=` (the one name every layer accepts) beside a layer's own or AdaptNLP's spelling (`bs`,
    `mini_batch_size`), or the other way round (`key="bs"`); `key` is removed from `options`. Both, with different
    values, are refused."""
    if key not in options:
        return own
    value = options.pop(key)
    if own != default and own != value:
        raise InvalidInputError(f"{key}={value!r} and {spelling}={own!r} name the same setting; pass one of them.")
    return int(value)


def defaults(declared: Iterable[Option]) -> dict[str, Any]:
    """`{name: default}` for every declared option."""
    return {o.name: o.default for o in declared}


def parse_cli_value(opt: Option, text: str) -> Any:
    """A `--param key=value` value: JSON when it parses (numbers, true/false, lists), else the plain string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if str in opt.kinds and not isinstance(value, str) and not any(k in opt.kinds for k in (int, float, bool, list)):
        value = text
    return value


def describe_options(declared: Sequence[Option]) -> str:
    """One line per option: `name (type, default ...): help`, for CLI help and errors."""
    return "\n".join(f"  {o.name} ({o.type_name()}, default {o.default!r}): {o.help}" for o in declared)


def options_signature(
    func: Callable[..., Any], declared: Sequence[Option], replace_var_keyword: bool = True
) -> inspect.Signature:
    """`func`'s signature with the declared options as keyword-only parameters (before any `**kwargs`)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    var_kw = [p for p in sig.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in params}
    extra = [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.type_name())
        for o in declared
        if o.name not in taken
    ]
    return sig.replace(parameters=params + extra + ([] if replace_var_keyword else var_kw))
