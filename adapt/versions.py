"""The versions of adapt's main dependencies that its test suite runs on, and a check of the installed ones.

`import adapt` calls `check_versions()`: a dependency outside its tested range gives one `UntestedVersionWarning`
naming the range (it may well work; it has not been tested). Only package metadata is read: nothing is imported.
"""

from __future__ import annotations

import re
import warnings
from importlib import metadata

__all__ = ["TESTED", "UntestedVersionWarning", "__version__", "check_versions", "untested"]

__version__ = "0.1.0"  # settings.ini says the same (a test checks)

# package -> (lowest tested release, first release not tested), by release number; README "Install" says the same
TESTED: dict[str, tuple[str, str]] = {
    "torch": ("2.13", "2.14"),
    "transformers": ("4.57", "4.58"),
    "fastai": ("2.8", "2.9"),
    "flair": ("0.15", "0.16"),
    "datasets": ("5.0", "5.1"),
}
_warned: set[str] = set()


class UntestedVersionWarning(UserWarning):
    """An installed dependency is outside the versions adapt is tested with."""


def _release(version: str) -> tuple[int, ...]:
    """The leading release numbers: "2.13.0+cpu" -> (2, 13, 0), "5.0.0rc1" -> (5, 0, 0), "2.8.dev0" -> (2, 8)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def untested() -> dict[str, tuple[str, str, str]]:
    """package -> (installed, lowest tested, first untested) for each installed package outside its range."""
    out = {}
    for name, (low, high) in TESTED.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if not _release(low) <= _release(installed) < _release(high):
            out[name] = (installed, low, high)
    return out


def check_versions() -> None:
    """Warn once per package (per process) that is installed outside its tested range."""
    for name, (installed, low, high) in untested().items():
        if name not in _warned:
            _warned.add(name)
            warnings.warn(
                f"adapt is tested with {name} >={low},<{high}; {installed} is installed. It may work, but if "
                f"something breaks, try pip install '{name}>={low},<{high}'.",
                UntestedVersionWarning,
                stacklevel=2,
            )
