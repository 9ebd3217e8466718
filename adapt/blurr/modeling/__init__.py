"""blurr's `blurr.modeling` package on adapt."""
