"""blurr's `blurr.text.utils` on adapt."""

from adapt.blurr._names import exports

_names = exports(__name__)
globals().update(_names)
__all__ = sorted(_names)
