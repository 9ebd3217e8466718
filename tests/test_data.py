"""Datasets: constructors, label vocabularies, splits, bad input, dynamic padding, show_batch."""
from __future__ import annotations

import pandas as pd
import pytest

from adapt import (
    DecodeError,
    EmptyDatasetError,
    InvalidInputError,
    MissingColumnError,
    NumClassesError,
    SequenceClassificationDatasets,
    UnknownLabelError,
    random_split,
)

SMALL = {"max_length": 32}


def _df(n=12):
    labels = ["tech", "sports", "business"]
    return pd.DataFrame({"text": [f"document number {i} about {labels[i % 3]}" for i in range(n)],
                         "label": [labels[i % 3] for i in range(n)]})


def test_from_dfs_sorted_stable_vocab(model_path):
    a = SequenceClassificationDatasets.from_dfs(_df(), "text", "label", model_path, tokenize_kwargs=SMALL)
    b = SequenceClassificationDatasets.from_dfs(_df().iloc[::-1], "text", "label", model_path, tokenize_kwargs=SMALL)
    assert a.vocab == b.vocab == ["business", "sports", "tech"]
    assert set(a.train["labels"]) <= {0, 1, 2}


def test_unknown_validation_label_is_named(model_path):
    valid = pd.DataFrame({"text": ["a new doc"], "label": ["weather"]})
    with pytest.raises(UnknownLabelError, match="weather"):
        SequenceClassificationDatasets.from_dfs(_df(), "text", "label", model_path, valid_df=valid)


def test_missing_column_lists_available(model_path):
    with pytest.raises(MissingColumnError, match=r"Available columns: \['text', 'label'\]"):
        SequenceClassificationDatasets.from_dfs(_df(), "body", "label", model_path)


def test_empty_dataset(model_path):
    with pytest.raises(EmptyDatasetError):
        SequenceClassificationDatasets.from_dfs(_df().iloc[:0], "text", "label", model_path)


def test_empty_text_row_is_named(model_path):
    df = _df()
    df.loc[3, "text"] = "  "
    with pytest.raises(InvalidInputError, match="DataFrame index 3: 'text' is empty or not text"):
        SequenceClassificationDatasets.from_dfs(df, "text", "label", model_path, valid_df=_df(3))


def test_random_split_is_seedable():
    assert random_split(50, 0.2, seed=1) == random_split(50, 0.2, seed=1)
    assert random_split(50, 0.2, seed=1) != random_split(50, 0.2, seed=2)
    tr, va = random_split(50, 0.2, seed=1)
    assert len(va) == 10 and not set(tr) & set(va) and len(tr) + len(va) == 50


def test_split_func_is_used(model_path):
    d = SequenceClassificationDatasets.from_dfs(
        _df(), "text", "label", model_path, split_func=lambda df: (list(range(9)), [9, 10, 11]), tokenize_kwargs=SMALL
    )
    assert len(d.train) == 9 and len(d.valid) == 3


def test_a_split_func_gets_pandas_rows_from_csvs_as_in_adaptnlp(tmp_path, model_path):
    """fastai's `ColSplitter` (and AdaptNLP users' own functions) read `items["is_valid"].values`: a DataFrame."""
    from fastai.data.transforms import ColSplitter

    df = _df().assign(is_valid=[i % 4 == 0 for i in range(len(_df()))])
    df.to_csv(tmp_path / "all.csv", index=False)
    d = SequenceClassificationDatasets.from_csvs(tmp_path / "all.csv", "text", "label", model_path, split_func=ColSplitter(),
                                                 tokenize_kwargs=SMALL)
    assert len(d.valid) == int(df.is_valid.sum()) and len(d.train) == len(df) - len(d.valid)


def test_from_csvs_passes_reader_kwargs_and_is_arrow_backed(tmp_path, model_path):
    df = _df()
    df.loc[0, "text"] = "prices in £ rose"
    train = tmp_path / "train.csv"
    df.to_csv(train, index=False, encoding="latin-1")
    d = SequenceClassificationDatasets.from_csvs(train, "text", "label", model_path, encoding="latin-1", tokenize_kwargs=SMALL)
    assert len(d.train) + len(d.valid) == 12 and d.vocab == ["business", "sports", "tech"]
    assert d.train.cache_files, "CSV datasets should be memory-mapped Arrow cache files"
    decoded = [d.tokenizer.decode(ids) for ids in list(d.train["input_ids"]) + list(d.valid["input_ids"])]
    assert any("£" in t for t in decoded)


def test_from_folders_decode_error_names_file(tmp_path, model_path):
    for lab in ("a", "b"):
        (tmp_path / lab).mkdir()
        for i in range(3):
            (tmp_path / lab / f"{i}.txt").write_text(f"text {i} of {lab}", encoding="utf-8")
    (tmp_path / "b" / "199.txt").write_bytes("costs \xa3 5".encode("latin-1"))
    with pytest.raises(DecodeError, match=r"199\.txt.*encoding='latin-1'"):
        SequenceClassificationDatasets.from_folders(tmp_path, tokenizer_name=model_path)
    d = SequenceClassificationDatasets.from_folders(tmp_path, tokenizer_name=model_path, encoding="latin-1", tokenize_kwargs=SMALL)
    assert d.vocab == ["a", "b"] and len(d.train) + len(d.valid) == 7


def test_from_hf_dataset_dict_and_classlabel(model_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    feats = Features({"sentence": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    rows = {"sentence": ["good film", "bad film", "great", "awful", "fine", "poor"], "label": [1, 0, 1, 0, 1, 0]}
    dd = DatasetDict({"train": Dataset.from_dict(rows, features=feats)})
    d = SequenceClassificationDatasets.from_hf(dd, "sentence", "label", model_path, split_pct=0.34, tokenize_kwargs=SMALL)
    assert d.vocab == ["neg", "pos"]  # ClassLabel order is kept
    neg = DatasetDict({"train": Dataset.from_dict({**rows, "label": [1, 0, -1, 0, 1, 0]}, features=feats)})
    with pytest.raises(InvalidInputError, match="label id -1"):
        SequenceClassificationDatasets.from_hf(neg, "sentence", "label", model_path, split_pct=0.34)
    with pytest.raises(KeyError, match=r"has \['train'\]"):
        SequenceClassificationDatasets.from_hf(dd, "sentence", "label", model_path, train_split="training")


def test_dynamic_padding_and_show_batch(bbc_dsets, capsys):
    dls = bbc_dsets.dataloaders(batch_size=4, shuffle_train=False)
    x, y = dls.train.one_batch()
    assert x["input_ids"].shape[1] <= bbc_dsets.max_length and y.shape == (4,)
    table = dls.batch_table(n=3)
    assert list(table.columns) == ["text", "labels"] and set(table["labels"]) <= set(bbc_dsets.vocab)
    raw = dls.batch_table(n=2, raw=True)
    assert {"input_ids", "n_tokens"} <= set(raw.columns)
    dls.show_batch(n=2)
    out = capsys.readouterr().out
    assert "text" in out and any(v in out for v in bbc_dsets.vocab)


def test_pads_per_batch_not_to_max_length(model_path):
    d = SequenceClassificationDatasets.from_dfs(_df(), "text", "label", model_path)  # max_length 512
    x, _ = d.dataloaders(batch_size=4).valid.one_batch()
    assert x["input_ids"].shape[1] < 20


def test_num_classes_mismatch(model_path):
    from adapt import SequenceClassificationTuner

    d = SequenceClassificationDatasets.from_dfs(_df(), "text", "label", model_path, tokenize_kwargs=SMALL)
    with pytest.raises(NumClassesError, match="3 classes"):
        SequenceClassificationTuner(d.dataloaders(), model_path, num_classes=2)


def test_group_by_length_cuts_padding_and_keeps_a_random_order(model_path):
    words = ["the", "market", "rallied", "as", "investors", "cheered", "strong", "quarterly", "results", "from", "banks"]
    texts = [" ".join(words * (1 + (i * 7) % 13))[: 20 + (i * 37) % 400] for i in range(96)]
    df = pd.DataFrame({"text": texts, "label": ["a", "b", "c"] * 32})
    d = SequenceClassificationDatasets.from_dfs(df, "text", "label", model_path, tokenize_kwargs={"max_length": 128})

    def epoch(dl):
        widths, seen = [], []
        for x, _ in dl:
            widths.append(x["input_ids"].shape[1] * len(x["input_ids"]))
            seen += [tuple(r[: int(m.sum())]) for r, m in zip(x["input_ids"].tolist(), x["attention_mask"], strict=True)]
        return sum(widths), seen

    plain, _ = epoch(d.dataloaders(batch_size=8).train)
    dl = d.dataloaders(batch_size=8, group_by_length=True).train
    grouped, first = epoch(dl)
    _, second = epoch(dl)
    real = int(sum(len(ids) for ids in d.train["input_ids"]))
    assert grouped < 0.8 * plain and grouped >= real  # far less padding ...
    assert sorted(first) == sorted(second) and len(first) == len(d.train)  # ... every row once per epoch ...
    assert first != second  # ... in a new random order each epoch


def test_datasets_progress_bars_only_for_large_data(model_path, tmp_path, capfd, monkeypatch):
    """Small jobs build without `datasets`' bars ("Tokenizing", "Map", "Generating train split"); the caller's
    setting comes back afterwards; large data keeps them, except under ADAPT_PROGRESS=0."""
    from datasets.utils import logging as ds_logging

    from adapt.utils import DATASETS_BARS_MIN_ROWS, datasets_bars

    df = pd.DataFrame({"text": [f"doc {i} about markets" for i in range(40)], "label": ["a", "b"] * 20})
    df.to_csv(tmp_path / "small.csv", index=False)
    ds_logging.enable_progress_bar()
    capfd.readouterr()
    SequenceClassificationDatasets.from_dfs(df, "text", "label", model_path, split_pct=0.25)
    SequenceClassificationDatasets.from_csvs(tmp_path / "small.csv", "text", "label", model_path, split_pct=0.25)
    err = capfd.readouterr().err
    assert "Tokenizing" not in err and "Map" not in err and "split" not in err, err
    assert ds_logging.is_progress_bar_enabled()  # restored
    with datasets_bars(DATASETS_BARS_MIN_ROWS):
        assert ds_logging.is_progress_bar_enabled()
    monkeypatch.setenv("ADAPT_PROGRESS", "0")
    with datasets_bars(DATASETS_BARS_MIN_ROWS):
        assert not ds_logging.is_progress_bar_enabled()
    assert ds_logging.is_progress_bar_enabled()


def test_bad_rows_are_named_where_the_user_finds_them_and_all_listed(tiny_bert_dir, tmp_path) -> None:
    """NaN labels and empty texts are reported by the DataFrame's own index (after the shuffled split too) or the
    CSV's line, every one of them up to ten, with the count."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({"text": [f"text number {k}" for k in range(30)], "label": ["a", "b", "c"] * 10},
                      index=range(100, 130))
    df.loc[105, "label"] = np.nan
    df.loc[117, "text"] = " "
    with pytest.raises(InvalidInputError) as e:
        SequenceClassificationDatasets.from_dfs(df, "text", "label", str(tiny_bert_dir))
    message = str(e.value)
    assert message.startswith("2 bad row(s): ") and "DataFrame index 105: 'label' is missing" in message
    assert "DataFrame index 117: 'text' is empty" in message
    for k in range(14):
        df.loc[110 + k, "label"] = None
    with pytest.raises(InvalidInputError, match=r"^15 bad row\(s\): .*; and 5 more\. Fix or drop them\.$"):
        SequenceClassificationDatasets.from_dfs(df, "text", "label", str(tiny_bert_dir))
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["good", "", "bad", "fine"] * 3, "label": ["p", "n", "n", "p"] * 3}).to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as e:
        SequenceClassificationDatasets.from_csvs(path, "text", "label", str(tiny_bert_dir))
    assert "3 bad row(s)" in str(e.value)
    assert all(f"'reviews.csv' line {n}: 'text' is empty" in str(e.value) for n in (3, 7, 11))


def _bad_frame(task: str):
    """30 good rows of `task`'s data indexed 200.., with two bad ones: index 203 and 211."""
    import pandas as pd

    if task == "question_answering":
        rows = [{"question": f"Where is item {k}?", "context": f"Item {k} is in Paris.",
                 "answers": {"text": ["Paris"], "answer_start": [len(f"Item {k} is in ")]}} for k in range(30)]
        rows[3]["question"] = " "
        rows[11]["answers"] = {"text": ["Paris"], "answer_start": [0]}
    elif task == "summarization":
        rows = [{"text": f"A long article number {k} about things.", "summary": f"Article {k}."} for k in range(30)]
        rows[3]["text"], rows[11]["summary"] = "", None
    else:
        rows = [{"text": f"Some text number {k} to learn from."} for k in range(30)]
        rows[3]["text"], rows[11]["text"] = None, None
    return pd.DataFrame(rows, index=range(200, 230))


@pytest.mark.parametrize(("task", "first", "second"), [
    ("question_answering", "DataFrame index 203: the question is empty", "DataFrame index 211: the answer 'Paris' does not"),
    ("summarization", "DataFrame index 203: 'text' is empty", "DataFrame index 211: 'summary' is a NoneType, not text"),
    ("language_modeling", "DataFrame index 203: a NoneType in 'text'", "DataFrame index 211: a NoneType in 'text'"),
])
def test_every_bad_row_of_qa_seq2seq_and_lm_data_is_listed_where_the_user_finds_it(task, first, second, tiny_bert_dir,
                                                                                    tiny_lm_dir) -> None:
    from adapt.tasks import get_task

    cls = get_task(task).datasets
    kwargs = {"source_col": "text", "target_col": "summary"} if task == "summarization" else {}
    model = tiny_lm_dir if task == "language_modeling" else tiny_bert_dir
    with pytest.raises(InvalidInputError) as e:
        cls.from_dfs(_bad_frame(task), tokenizer_name=str(model), **kwargs)
    message = str(e.value)
    assert message.startswith("2 bad row(s): ") and first in message and second in message, message


def test_bad_data_and_bad_options_have_their_own_classes_under_invalid_input() -> None:
    """A caller can catch bad data apart from bad options; `except InvalidInputError` still catches both."""
    import pandas as pd

    from adapt.data import check_rows
    from adapt.errors import InvalidDataError, InvalidOptionError
    from adapt.options import Option, check_options

    split = ("train", pd.DataFrame({"text": ["fine", ""]}))
    with pytest.raises(InvalidDataError, match="1 bad row"):
        check_rows([split], ["text"], lambda text: None if text else "no text")
    with pytest.raises(InvalidOptionError, match="Did you mean 'max_length'"):
        check_options({"max_lenght": 3}, [Option("max_length", int, None, "tokens kept")])
    assert issubclass(InvalidDataError, InvalidInputError) and issubclass(InvalidOptionError, InvalidInputError)
