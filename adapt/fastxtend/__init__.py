"""fastxtend's module paths on adapt: `from adapt.fastxtend.text.all import *` in place of
`from fastxtend.text.all import *` (see `adapt.fastxtend.text.huggingface`)."""
