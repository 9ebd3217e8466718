"""blurr's `blurr.data` package on adapt."""
