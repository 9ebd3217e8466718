"""blurr's `blurr.data.seq2seq` package on adapt."""
