"""blurr's `blurr.text.data` package on adapt."""
