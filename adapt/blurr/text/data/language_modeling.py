"""blurr's `blurr.text.data.language_modeling` on adapt."""

from adapt.blurr._names import exports

_names = exports(__name__)
globals().update(_names)
__all__ = sorted(_names)
