"""blurr's `blurr.text.data.seq2seq` package on adapt."""
