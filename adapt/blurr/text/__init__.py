"""blurr's `blurr.text` package on adapt."""
