"""blurr's `blurr.modeling.seq2seq` package on adapt."""
