"""Extractive QA: SQuAD metrics, windowed datasets, learning, Easy inference, plain-transformers reload, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adapt import (
    EasyQuestionAnswering,
    EasySummarizer,
    InvalidInputError,
    MissingColumnError,
    QuestionAnsweringDatasets,
    WrongTaskError,
)
from adapt.tasks.question_answering import read_squad_json, squad_exact_match, squad_f1, squad_normalize, squad_scores

CONTEXT = "The final was played in Cardiff. Arsenal beat Chelsea 2-1 and Thierry Henry scored twice in the second half."


def _record(question: str, context: str, text: str | None, start: int | None) -> dict:
    answers = {"text": [text], "answer_start": [start]} if text is not None else {"text": [], "answer_start": []}
    return {"question": question, "context": context, "answers": answers}


# -- metrics ---------------------------------------------------------------------------------------
def test_squad_normalisation_and_scores_match_the_official_script():
    assert squad_normalize("The  Cat, sat!") == "cat sat"
    assert squad_normalize("An apple a day") == "apple day"
    assert squad_exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert squad_exact_match("Eiffel", ["Eiffel Tower", "the tower"]) == 0.0
    # pred {cat, sat} vs gold {cat, sat, on, mat}: precision 1, recall 1/2 -> F1 2/3
    assert squad_f1("the cat sat", ["a cat sat on the mat"]) == pytest.approx(2 / 3)
    assert squad_f1("cat", ["dog", "the cat"]) == 1.0  # best gold counts
    assert squad_f1("paris paris", ["paris"]) == pytest.approx(2 / 3)  # repeated tokens count once per match
    assert squad_f1("", []) == 1.0 and squad_exact_match("", []) == 1.0  # unanswerable, answered ""
    assert squad_f1("London", []) == 0.0 and squad_exact_match("London", []) == 0.0
    assert squad_scores(["1976", "x"], [["1976"], ["y"]]) == {"exact_match": 50.0, "f1": 50.0}
    with pytest.raises(InvalidInputError):
        squad_scores([], [])


def test_read_squad_json_flattens_the_official_layout(tmp_path: Path):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q1", "question": "Where?", "answers": [{"text": "Cardiff", "answer_start": 24}]},
        {"id": "q2", "question": "Who lost 3-0?", "answers": [], "is_impossible": True}]}]}]}
    f = tmp_path / "squad.json"
    f.write_text(json.dumps(data))
    rows = read_squad_json(f)
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert rows[0]["answers"] == {"text": ["Cardiff"], "answer_start": [24]}
    assert rows[1]["answers"] == {"text": [], "answer_start": []}
    lines = tmp_path / "squad.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows))
    assert read_squad_json(lines) == rows


# -- datasets --------------------------------------------------------------------------------------
def test_long_contexts_become_windows_labelled_with_the_answer(model_path: str):
    filler = " ".join(f"Sentence {i} says nothing at all about football matches." for i in range(30))
    context = filler + " " + CONTEXT + " " + filler
    start = context.index("Thierry Henry")
    rows = [_record("Who scored twice?", context, "Thierry Henry", start)] * 4
    dsets = QuestionAnsweringDatasets.from_dfs(pd.DataFrame(rows), model_path, max_length=64, doc_stride=16, split_pct=0.25)
    tok = dsets.tokenizer
    train = dsets.train
    per_example = len(train) // 3
    assert per_example > 10  # ~700 tokens of context in 64-token windows
    labelled = [r for r in train if r["start_positions"] != 0]
    assert labelled, "no window holds the answer"
    for r in labelled:  # the answer may sit in two overlapping windows; both label it exactly
        assert tok.decode(r["input_ids"][r["start_positions"] : r["end_positions"] + 1]) == "thierry henry"
    assert all(r["end_positions"] == 0 for r in train if r["start_positions"] == 0)  # CLS elsewhere
    assert dsets.max_length == 64 and dsets.doc_stride == 16
    view = dsets.dataloaders(batch_size=4).batch_table(n=3, seed=0)
    assert {"window", "answer", "n_tokens"} <= set(view.columns)


def test_answer_start_that_does_not_match_names_the_row(model_path: str):
    rows = [_record("Where?", CONTEXT, "Cardiff", 24), _record("Who won?", CONTEXT, "Arsenal", 5)] * 3
    with pytest.raises(InvalidInputError, match=r"DataFrame index 1.*'Arsenal'.*answer_start=5.*occurs at offset 33"):
        QuestionAnsweringDatasets.from_dfs(pd.DataFrame(rows), model_path, valid_df=pd.DataFrame(rows[:2]))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("question", "  ", "question is empty"), ("context", "", "context is empty"), ("question", None, "question is None")],
)
def test_empty_question_or_context_is_refused(model_path: str, field: str, value, match: str):
    rows = [_record("Where?", CONTEXT, "Cardiff", 24) for _ in range(4)]
    rows[2][field] = value
    with pytest.raises(InvalidInputError, match=f"DataFrame index 2: the {match}"):
        QuestionAnsweringDatasets.from_dfs(pd.DataFrame(rows), model_path, valid_df=pd.DataFrame(rows[:1]))


def test_missing_column_is_named(model_path: str):
    df = pd.DataFrame([_record("Where?", CONTEXT, "Cardiff", 24)] * 3).rename(columns={"context": "passage"})
    with pytest.raises(MissingColumnError, match="context"):
        QuestionAnsweringDatasets.from_dfs(df, model_path)
    assert QuestionAnsweringDatasets.from_dfs(df, model_path, context_col="passage").cols[1] == "passage"


# -- learning ----------------------------------------------------------------------------------------
def test_exact_match_and_f1_rise_well_above_the_untrained_model(qa_trained):
    tuner, before, after = qa_trained
    assert after["valid_loss"] < before["valid_loss"]
    assert after["exact_match"] > before["exact_match"] + 30, (before, after)
    assert after["f1"] > max(50.0, before["f1"] + 30), (before, after)
    assert {"exact_match", "f1"} <= set(tuner.history()[-1])


def test_unanswerable_questions_answer_empty_with_no_answer(qa_trained, qa_dir: Path, qa_df):
    tuner = qa_trained[0]
    ex = tuner.datasets.valid_examples
    empty = [i for i in range(len(ex)) if not ex[i]["answers"]["text"]]
    assert len(empty) >= 5
    out = EasyQuestionAnswering().predict_qa(
        [ex[i]["question"] for i in empty], [ex[i]["context"] for i in empty], model_name_or_path=qa_dir
    )
    flagged = [a for a in out["answers"] if a["no_answer"]]
    assert len(flagged) >= len(empty) / 2, out["answers"]
    assert all(a["answer"] == "" and a["start"] is None for a in flagged)


# -- inference ---------------------------------------------------------------------------------------
def test_predict_qa_levels_offsets_and_pairs(qa_dir: Path, qa_df):
    qa = EasyQuestionAnswering()
    row = qa_df[qa_df.answers.map(lambda a: len(a["text"]) > 0)].iloc[0]
    low = qa.predict_qa(row.question, row.context, model_name_or_path=qa_dir)
    assert set(low) == {"questions", "answers", "queries", "best_answers"} and len(low["answers"]) == 1
    a = low["answers"][0]
    assert set(a) == {"answer", "score", "start", "end", "no_answer"}
    if not a["no_answer"]:
        assert row.context[a["start"] : a["end"]] == a["answer"] and 0 < a["score"] <= 1
    med = qa.predict_qa(row.question, row.context, n_best_size=3, model_name_or_path=qa_dir, detail_level="medium")
    assert 1 <= len(med["best_n"][0]) <= 3
    assert all(row.context[c["start"] : c["end"]] == c["answer"] for c in med["best_n"][0])
    scores = [c["score"] for c in med["best_n"][0]]
    assert scores == sorted(scores, reverse=True)
    high = qa.predict_qa([row.question] * 2, [row.context] * 2, model_name_or_path=qa_dir, detail_level="high")
    assert high["windows"] == [1, 1] and len(high["no_answer_scores"]) == 2
    json.dumps(high)  # JSON-safe
    with pytest.raises(InvalidInputError, match="2 questions and 1 contexts"):
        qa.predict_qa([row.question] * 2, [row.context], model_name_or_path=qa_dir)
    with pytest.raises(InvalidInputError):
        qa.predict_qa("", row.context, model_name_or_path=qa_dir)
    with pytest.raises(InvalidInputError):
        qa.predict_qa(row.question, None, model_name_or_path=qa_dir)


def test_answers_in_contexts_far_longer_than_the_model_maximum(qa_dir: Path, qa_trained):
    tuner = qa_trained[0]
    ex = tuner.datasets.valid_examples
    i = next(i for i in range(len(ex)) if ex[i]["answers"]["text"])
    filler = " ".join(f"Paragraph {k} is about nothing in particular and names nobody." for k in range(80))
    context = filler + " " + ex[i]["context"] + " " + filler  # ~1,800 tokens; the model takes 128
    short = EasyQuestionAnswering().predict_qa(ex[i]["question"], ex[i]["context"], model_name_or_path=qa_dir)
    long = EasyQuestionAnswering().predict_qa(ex[i]["question"], context, model_name_or_path=qa_dir, detail_level="high")
    assert long["windows"][0] > 15
    got, want = long["answers"][0], short["answers"][0]
    assert got["no_answer"] == want["no_answer"]
    if not got["no_answer"]:  # the same span, read from other window boundaries (it may come out shorter)
        assert squad_f1(got["answer"], [want["answer"]]) > 0, (got, want)
        assert context[got["start"] : got["end"]] == got["answer"] and len(filler) < got["start"] < len(filler) + 500


def test_saved_folder_reloads_in_plain_transformers_and_agrees(qa_dir: Path, qa_trained):
    """The saved folder is a plain transformers QA model: its own pipeline finds the same answers."""
    from transformers import pipeline

    tuner = qa_trained[0]
    ex = tuner.datasets.valid_examples
    idx = [i for i in range(len(ex)) if ex[i]["answers"]["text"]][:20]
    pipe = pipeline("question-answering", model=str(qa_dir), tokenizer=str(qa_dir), device=-1)
    theirs = [pipe(question=ex[i]["question"], context=ex[i]["context"], max_answer_len=30, max_seq_len=128, doc_stride=32)
              for i in idx]
    ours = EasyQuestionAnswering().predict_qa(
        [ex[i]["question"] for i in idx], [ex[i]["context"] for i in idx], model_name_or_path=qa_dir, allow_no_answer=False
    )["answers"]
    same = sum(t["answer"].strip() == o["answer"] for t, o in zip(theirs, ours, strict=True))
    assert same >= 0.8 * len(idx), list(zip(theirs, ours, strict=True))
    assert json.loads((qa_dir / "adapt.json").read_text())["allow_no_answer"] is True


def test_tuner_predict_matches_the_easy_module(qa_trained, qa_dir: Path, qa_df):
    tuner = qa_trained[0]
    q, c = list(qa_df.question[:4]), list(qa_df.context[:4])
    assert tuner.predict(q, c, detail_level="medium") == EasyQuestionAnswering().predict_qa(
        q, c, model_name_or_path=qa_dir, detail_level="medium"
    )


def test_wrong_model_kind_says_what_was_found(qa_dir: Path, tiny_lm_dir: Path):
    with pytest.raises(WrongTaskError, match="question_answering"):
        EasySummarizer().summarize("Some text here.", qa_dir)
    with pytest.raises(WrongTaskError, match="GPT2LMHeadModel"):
        EasyQuestionAnswering().predict_qa("Who?", CONTEXT, model_name_or_path=tiny_lm_dir)
