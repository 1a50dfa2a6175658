"""A data set whose questions do not reuse the passage's words, built from a BEIR one, and its first stages.

    python bench/lexical_mismatch.py --data ../shared/data/scifact --out runs/bench/scifact-synonyms
    python bench/lexical_mismatch.py --data ../shared/data/covidqa --out runs/bench/covidqa-synonyms

Users' real questions often name things in other words than their documents do (an analyst asks for "capital
expenditure", the filing says "purchases of property, plant and equipment"). Neither SciFact nor COVID-QA shows
that: their questions were written next to the passage, and BM25 or hybrid is their best first stage. This script
makes such a set the way query-variation studies do (Penha et al., ECIR 2022, "Evaluating the robustness of
retrieval pipelines with query variation generators"): every word of a query that also occurs in one of its
relevant passages (compared stemmed; stopwords and words under 4 letters stay) is replaced by a WordNet synonym
that its relevant passages do not contain, taken from the most frequent sense the word names; a word with none
stays (``--typos``: gets two adjacent letters swapped, as a hurried user types). Corpus and
qrels are the original ones (linked, not copied); every query of every qrels split is rewritten, deterministically.

It then prints nDCG@10 of BM25, dense and hybrid on ``--split`` for the original and the rewritten queries, each
with its paired p against that set's best first stage.

Needs WordNet for nltk: ``pip install nltk`` and ``python -m nltk.downloader wordnet``; offline, the Debian package
(``apt-get install wordnet-base``) copied to ``~/nltk_data/corpora/wordnet`` with a ``lexnames`` file and an empty
``index.sense`` added.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

WORD = re.compile(r"[A-Za-z][A-Za-z\-]*")


class Rewriter:
    """Replaces a query's words that its relevant passages contain by WordNet synonyms they do not contain."""

    def __init__(self, typos: bool = False):
        import Stemmer
        from nltk.corpus import wordnet
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        self.wordnet, self.stem = wordnet, Stemmer.Stemmer("english").stemWord
        self.stopwords, self.typos = set(ENGLISH_STOP_WORDS), typos

    def stems(self, text: str) -> set[str]:
        return {self.stem(w.lower()) for w in WORD.findall(text)}

    def synonym(self, word: str, avoid: set[str]) -> str | None:
        """The first other lemma of the first sense that ``word`` itself names (its first lemma): a sense where the
        word is only a variant is often a rare one ("have" as "rich person")."""
        base = self.wordnet.morphy(word) or word
        named = [s for s in self.wordnet.synsets(word) if s.lemma_names()[0].lower() == base]
        for lemma in named[0].lemma_names()[1:] if named else []:
            candidate = lemma.replace("_", " ")
            if not self.stems(candidate) & (avoid | self.stems(word)):
                return candidate
        return None

    def rewrite(self, query: str, passages: list[str]) -> tuple[str, int]:
        """The rewritten query and how many of its words were replaced."""
        avoid = set().union(*(self.stems(p) for p in passages)) if passages else set()
        replaced = 0

        def swap(match: re.Match) -> str:
            nonlocal replaced
            word = match.group(0)
            if len(word) < 4 or word.lower() in self.stopwords or self.stem(word.lower()) not in avoid:
                return word
            synonym = self.synonym(word.lower(), avoid) or (typo(word) if self.typos else None)
            replaced += synonym is not None
            return synonym or word

        return WORD.sub(swap, query), replaced


def typo(word: str) -> str:
    """``word`` with two adjacent inner letters swapped (which two: seeded by the word)."""
    i = random.Random(word).randrange(1, len(word) - 2) if len(word) > 3 else 0
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load(data: Path, kind: str, split: str = "test"):
    """``data``'s corpus, queries or ``split`` qrels (relevant pairs only) through the package's BEIR loaders."""
    from rerankforge.retrieval import loaders
    from rerankforge.retrieval.config import FieldNames

    problems: list = []
    if kind == "qrels":
        got = {q: {d: r for d, r in docs.items() if r > 0}
               for q, docs in loaders.load_qrels(data / "qrels" / f"{split}.tsv", FieldNames(), problems).items()}
    else:
        got = getattr(loaders, f"load_{kind}")(data / f"{kind}.jsonl", FieldNames(), problems)
    if problems:
        raise SystemExit(f"{data}: cannot read its {kind}: {problems[:3]}")
    return got


def build(data: Path, out: Path, typos: bool = False) -> dict[str, int]:
    corpus = {d: f"{doc['title']} {doc['text']}" for d, doc in load(data, "corpus").items()}
    relevant: dict[str, set[str]] = {}
    for split in sorted((data / "qrels").glob("*.tsv")):
        for query_id, docs in load(data, "qrels", split.stem).items():
            relevant.setdefault(query_id, set()).update(docs)
    rewriter, counts, rows = Rewriter(typos), {"queries": 0, "rewritten": 0, "words_replaced": 0}, []
    for query in read_jsonl(data / "queries.jsonl"):
        if query["_id"] in relevant:
            text, replaced = rewriter.rewrite(query["text"], [corpus[d] for d in relevant[query["_id"]] if d in corpus])
            query = {**query, "text": text}
            counts["queries"] += 1
            counts["rewritten"] += replaced > 0
            counts["words_replaced"] += replaced
        rows.append(query)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    (out / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for source in [data / "corpus.jsonl", *sorted((data / "qrels").glob("*.tsv"))]:
        target = out / source.relative_to(data)
        target.unlink(missing_ok=True)
        target.symlink_to(source.resolve())
    return counts


def first_stage(data: Path):
    """The hybrid first stage over ``data``'s corpus (it runs BM25 and dense too), and ``{doc_id: model text}``."""
    from rerankforge.core.io import resolve_cache_dir
    from rerankforge.retrieval.config import EncoderConfig, FirstStageConfig
    from rerankforge.retrieval.corpus_store import corpus_ids, corpus_texts
    from rerankforge.retrieval.first_stage import FirstStage

    corpus = load(data, "corpus")
    doc_ids = corpus_ids(corpus)
    texts = corpus_texts(corpus, doc_ids)
    spec = FirstStageConfig("hybrid", EncoderConfig(dtype="auto"))
    return FirstStage(spec, texts, resolve_cache_dir(), doc_ids=doc_ids), dict(zip(doc_ids, texts))


def first_stages(data: Path, split: str) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10 of each first stage on ``split``: ``{method: {query_id: value}}``."""
    from rerankforge.core.metrics import per_query, untied

    qrels, texts = load(data, "qrels", split), load(data, "queries")
    query_ids = sorted(q for q in qrels if q in texts)
    stage, _ = first_stage(data)
    hits = stage.hits_all([texts[q] for q in query_ids], 100)
    return {method: per_query({q: qrels[q] for q in query_ids},
                              {q: untied(h) for q, h in zip(query_ids, method_hits)}, ["ndcg@10"])["ndcg@10"]
            for method, method_hits in hits.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a BEIR folder")
    parser.add_argument("--out", type=Path, required=True, help="where the rewritten BEIR folder goes")
    parser.add_argument("--split", default="test", help="the qrels split whose first stages are compared")
    parser.add_argument("--typos", action="store_true",
                        help="a word with no usable synonym gets two adjacent letters swapped instead of staying")
    args = parser.parse_args(argv)
    from rerankforge.core.metrics import paired_test

    counts = build(args.data, args.out, args.typos)
    print(f"{counts['rewritten']} of {counts['queries']} queries rewritten, {counts['words_replaced']} words "
          f"replaced -> {args.out}")
    print(f"| {args.data.name} {args.split} | BM25 | dense | hybrid |\n|---|---|---|---|")
    for name, folder in (("original queries", args.data), ("rewritten queries", args.out)):
        runs = first_stages(folder, args.split)
        means = {m: sum(v.values()) / len(v) for m, v in runs.items()}
        best = max(means, key=means.get)
        cells = [f"{means[m]:.4f}" + ("" if m == best else f" (p = {paired_test(runs[best], runs[m])['p_value']:.2g})")
                 for m in ("bm25", "dense", "hybrid")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
