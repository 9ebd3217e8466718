"""blurr's `blurr.text.modeling.seq2seq` package on adapt."""
