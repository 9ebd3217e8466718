"""fastxtend's `text` modules on adapt."""
