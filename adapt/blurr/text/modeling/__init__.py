"""blurr's `blurr.text.modeling` package on adapt."""
