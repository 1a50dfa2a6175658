"""`rerankforge synth` with a stub generator: the label set it writes, what the filters count, resume after a
SIGKILL, the error budget, a real HTTP endpoint that answers garbage or errors, mixed and few-shot modes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_jsonl, write_qrels

from rerankforge.core.problems import DataError
from rerankforge.data_prep.config import MineConfig, SynthConfig, check_synth_config
from rerankforge.data_prep.synth import SynthError, synth
from rerankforge.models.llm import Completion

WORDS = "aspirin stroke vaccine child cancer gene protein cell mouse trial risk dose heart brain liver virus".split()


def corpus_folder(folder: Path, n: int = 30) -> Path:
    """Documents whose text has two words no other document has (``uniq<i>a``, ``uniq<i>b``)."""
    docs = [{"_id": f"d{i}", "title": f"Title {i}",
             "text": f"uniq{i}a " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(24)) + f" uniq{i}b."}
            for i in range(n)]
    write_jsonl(folder / "corpus.jsonl", docs)
    return folder


def doc_number(prompt: str) -> int:
    return int(prompt.split("uniq", 1)[1].split("a", 1)[0])


class Stub:
    """Asks about the two words only its passage has; ``answers`` overrides the output for some documents."""

    batch_size = 4

    def __init__(self, answers=None, fail=(), delay=0.0):
        self.answers, self.fail, self.delay, self.prompts, self.temperatures = answers or {}, set(fail), delay, [], []

    def complete(self, prompts, temperature=None):
        self.prompts += prompts
        self.temperatures += [temperature] * len(prompts)
        time.sleep(self.delay)
        out = []
        for n, prompt in enumerate(prompts):
            i = doc_number(prompt)
            if i in self.fail:
                raise ConnectionError(f"endpoint down for d{i}")
            # sampled (a temperature for this call): a different question for each draw
            sampled = f" (draw {len(self.prompts) + n})" if temperature else ""
            text = self.answers.get(i, f"Question: what links uniq{i}a with uniq{i}b{sampled}?")
            out.append(Completion(text, 50, 40 if text == "Question: what is the" else 9))  # 40: the token limit
        return out


def config(tmp_path: Path, data: Path, *overrides: str) -> SynthConfig:
    from rerankforge.core.config import load_config

    return load_config(SynthConfig, None, [f"data.path={data}", f"output_dir={tmp_path / 'synth'}",
                                           "first_stage=bm25", "passages=20", "min_passage_words=5",
                                           "filters.round_trip_depth=3", f"cache_dir={tmp_path / 'cache'}",
                                           *overrides])


def read_queries(out: Path) -> dict[str, str]:
    return {r["_id"]: r["text"] for r in map(json.loads, (out / "queries.jsonl").read_text().splitlines())}


def test_label_set_is_beir_layout_that_mining_reads_and_counts_add_up(tmp_path):
    data = corpus_folder(tmp_path / "data")
    answers = {0: "", 1: "Question: what is the", 2: "uniq", 3: "What links uniq0a with uniq0b?",
               4: "uniq4a " + " ".join(WORDS[4:14]), 6: "What links uniq7a with uniq7b?",
               7: "what links uniq7a with UNIQ7B"}
    stub = Stub(answers)
    out = synth(config(tmp_path, data, "filters.round_trip_depth=1"), llm=stub)
    manifest = json.loads((out / "manifest.json").read_text())
    counts, queries = manifest["counts"], read_queries(out)
    assert counts["passages_sampled"] == 20 and len(stub.prompts) == 20
    sampled = sorted(doc_number(p) for p in stub.prompts)
    # 1 hit the token limit mid-sentence; 3 asks about d0's words, so d3 is not found for it; 4 copies its passage;
    # 6 asks d7's question: it fails the round trip, and 7's own, the same text, is kept
    reasons = {0: "empty", 1: "truncated", 2: "too_short", 3: "round_trip", 4: "copies_passage", 6: "round_trip"}
    expected = Counter(reasons[i] for i in sampled if reasons.get(i))
    assert {r: n for r, n in counts["dropped"].items() if n} == dict(expected)
    assert ("what links uniq7a with UNIQ7B" in queries.values()) == (7 in sampled)
    assert counts["queries_kept"] == 20 - sum(counts["dropped"].values())
    assert counts["queries_generated"] == counts["queries_kept"] + sum(
        n for r, n in counts["dropped"].items() if r != "generator_error")
    assert len(queries) == counts["queries_kept"] and all(q.startswith("synth-d") for q in queries)
    assert manifest["prompt"] == SynthConfig().prompt and manifest["generator"]["gguf_file"]
    assert manifest["speed"]["queries_per_s"] > 0 and manifest["inputs"]["corpus"]["sha256"]
    from rerankforge.data_prep.mine import load_labelled_data

    mine = MineConfig()
    mine.data.path, mine.data.queries, mine.data.qrels = str(data), str(out / "queries.jsonl"), \
        str(out / "qrels" / "train.tsv")
    mine.data.eval_split = None
    labelled = load_labelled_data(mine)
    assert {q: p for q, p in labelled.positives.items()} == {q: [q.split("-")[1]] for q in queries}


def test_several_queries_per_passage_and_repeats_are_duplicates(tmp_path):
    stub = Stub({1: "what links uniq1a with uniq1b?"})
    out = synth(config(tmp_path, corpus_folder(tmp_path / "data"), "queries_per_passage=2",
                       "generator.temperature=0.7"), llm=stub)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert len(stub.prompts) == 40 and stub.prompts[0] == stub.prompts[1]
    assert counts["queries_generated"] == 40 and counts["dropped"]["duplicate"] == 20 and counts["queries_kept"] == 20


def test_a_small_corpus_gets_more_questions_per_passage_the_first_greedy_the_others_sampled(tmp_path):
    from rerankforge.data_prep.synth import questions_per_passage, synthetic_passage

    stub = Stub()
    out = synth(config(tmp_path, corpus_folder(tmp_path / "data", n=12), "passages=40", "max_queries_per_passage=3",
                       "dev_fraction=0.25"), llm=stub)
    manifest = json.loads((out / "manifest.json").read_text())
    # 12 passages, 40 wanted: 40 // 12 = 3 each (at most 3); the first of each asked as configured (greedy)
    assert manifest["config"]["queries_per_passage"] == 3 and len(stub.prompts) == 36
    assert stub.temperatures.count(None) == 12 and stub.temperatures.count(0.7) == 24
    queries = read_queries(out)
    assert manifest["counts"]["queries_kept"] == 36 and len(set(queries.values())) == 36
    assert {synthetic_passage(q) for q in queries} == {f"d{i}" for i in range(12)}
    # the dev split holds whole passages: no dev question was asked of a passage a training question was
    dev = {synthetic_passage(line.split("\t")[0]) for line in (out / "qrels" / "dev.tsv").read_text().splitlines()[1:]}
    train = {synthetic_passage(line.split("\t")[0])
             for line in (out / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    assert dev and train and not dev & train
    cfg = SynthConfig(passages=1100, max_queries_per_passage=4)
    assert [questions_per_passage(cfg, n) for n in (100, 300, 600, 1100, 5000)] == [4, 3, 1, 1, 1]
    assert questions_per_passage(SynthConfig(passages=None, max_queries_per_passage=4), 10) == 1
    assert synthetic_passage("synth-PMC123#2-0") == "PMC123#2" and synthetic_passage("q17") is None


def test_synthetic_queries_pass_through_mine(tmp_path):
    from rerankforge.data_prep.mine import mine

    data = corpus_folder(tmp_path / "data")
    out = synth(config(tmp_path, data, "passages=null"), llm=Stub())
    cfg = MineConfig(output_dir=str(tmp_path / "mine"), cache_dir=str(tmp_path / "cache"))
    cfg.data.path, cfg.data.queries, cfg.data.qrels = str(data), str(out / "queries.jsonl"), \
        str(out / "qrels" / "train.tsv")
    cfg.data.eval_split, cfg.data.dev_fraction = None, 0
    cfg.first_stage.method, cfg.mining.range_max, cfg.mining.num_negatives = "bm25", 20, 3
    manifest = json.loads((mine(cfg) / "manifest.json").read_text())
    assert manifest["counts"]["queries_mined"] == 30


KILLED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from data_prep.test_synth import Stub, config
    from pathlib import Path
    from rerankforge.data_prep.synth import synth
    stub = Stub(delay=0.3)
    stub.batch_size = 2
    synth(config(Path({tmp!r}), Path({data!r})), llm=stub)
""")


def test_a_killed_run_resumes_keeping_every_finished_query_and_duplicating_none(tmp_path):
    data = corpus_folder(tmp_path / "data")
    script = tmp_path / "run.py"
    script.write_text(KILLED.format(tests=str(Path(__file__).parents[1]), tmp=str(tmp_path), data=str(data)))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    journal = tmp_path / "synth" / "generated.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(journal, "a") as f:
        f.write('{"doc_id": "d1", "outp')  # a line cut by the kill
    finished = [json.loads(line)["doc_id"] for line in journal.read_text().splitlines()[1:-1]]
    assert 4 <= len(finished) < 20 and not (tmp_path / "synth" / "manifest.json").exists()

    stub = Stub()
    out = synth(config(tmp_path, data), llm=stub)
    regenerated = [f"d{doc_number(p)}" for p in stub.prompts]
    assert not set(regenerated) & set(finished)  # nothing finished is generated again
    assert len(regenerated) + len(finished) == 20
    done = [json.loads(line)["doc_id"] for line in journal.read_text().splitlines()[1:]]
    assert sorted(done) == sorted(set(done)) and len(done) == 20  # the cut line is gone, nothing twice
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["passages_reused"] == len(finished) and counts["passages_generated_this_run"] == len(regenerated)
    assert counts["queries_kept"] == 20 and len(read_queries(out)) == 20

    again = Stub()
    synth(config(tmp_path, data), llm=again)
    assert again.prompts == []  # all done: the filters rerun, the generator is not called
    with pytest.raises(DataError, match="another generator, prompt, corpus or seed"):
        synth(config(tmp_path, data, "max_passage_words=10"), llm=Stub())


def test_generator_errors_are_counted_until_the_budget_is_spent(tmp_path):
    data = corpus_folder(tmp_path / "data")
    stub = Stub(fail={i for i in range(30) if i % 5 == 0})
    stub.batch_size = 1
    out = synth(config(tmp_path, data, "max_errors=10"), llm=stub)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    failed = {doc_number(p) for p in stub.prompts if doc_number(p) % 5 == 0}
    assert counts["generator_errors_this_run"] == len(failed) == counts["dropped"]["generator_error"] > 0
    assert counts["queries_kept"] == 20 - len(failed)
    retry = Stub()
    out = synth(config(tmp_path, data, "max_errors=10"), llm=retry)  # the failed passages are retried
    assert {doc_number(p) for p in retry.prompts} == failed
    assert json.loads((out / "manifest.json").read_text())["counts"]["queries_kept"] == 20

    stub = Stub(fail=set(range(30)))
    stub.batch_size = 1
    with pytest.raises(SynthError, match=r"failed 3 times, more than max_errors=2; the last error: ConnectionError"):
        synth(config(tmp_path, data, "max_errors=2", f"output_dir={tmp_path / 'other'}"), llm=stub)
    assert len(stub.prompts) == 3  # it stopped there


class Endpoint:
    """A real HTTP server on loopback answering chat completions: garbage, a 500, or a query, by document."""

    def __enter__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                i = doc_number(body["messages"][0]["content"])
                if i % 3 == 0:
                    self.send_response(500)
                    payload = b'{"error": "model crashed"}'
                elif i % 3 == 1:
                    self.send_response(200)
                    payload = b"<html>not json</html>"
                else:
                    self.send_response(200)
                    payload = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                              "role": "assistant", "content": f"what links uniq{i}a with uniq{i}b?"}}],
                                          "usage": {"prompt_tokens": 40, "completion_tokens": 8,
                                                    "total_tokens": 48}}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.server.shutdown()


def test_an_endpoint_answering_garbage_or_500_is_counted_not_fatal(tmp_path):
    pytest.importorskip("openai")
    data = corpus_folder(tmp_path / "data", n=12)
    with Endpoint() as url:
        cfg = config(tmp_path, data, "generator.kind=openai", f"generator.base_url={url}", "generator.model=m",
                     "passages=null", "max_errors=100")
        counts = json.loads((synth(cfg) / "manifest.json").read_text())["counts"]
    assert counts["generator_errors_this_run"] == 8  # 4 answered 500, 4 answered HTML
    assert counts["queries_kept"] == 4 and counts["dropped"]["generator_error"] == 8


def test_mixed_mode_adds_the_real_labels_and_examples_reach_the_prompt(tmp_path):
    data = corpus_folder(tmp_path / "data")
    write_jsonl(data / "queries.jsonl", [{"_id": "r1", "text": "real question one?"},
                                         {"_id": "r2", "text": "real question two?"}])
    write_qrels(data / "qrels" / "small.tsv", [("r1", "d3", 1), ("r2", "d4", 2)])
    (tmp_path / "examples.txt").write_text("does aspirin cut stroke risk?\n\nwhich genes drive liver cancer?\n")
    stub = Stub()
    out = synth(config(tmp_path, data, f"mix_with={data / 'qrels' / 'small.tsv'}",
                       f"examples={tmp_path / 'examples.txt'}"), llm=stub)
    assert "- does aspirin cut stroke risk?\n" in stub.prompts[0] and "- which genes drive liver cancer?" in stub.prompts[0]
    queries = read_queries(out)
    assert queries["r1"] == "real question one?" and queries["r2"] == "real question two?"
    train = (out / "qrels" / "train.tsv").read_text().splitlines()
    assert "r1\td3\t1" in train and "r2\td4\t2" in train and len(train) == 1 + 20 + 2
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["real_queries_mixed_in"] == 2 and counts["queries_train"] == 20
    write_qrels(data / "qrels" / "bad.tsv", [("r9", "d3", 1)])
    with pytest.raises(DataError, match=r"1 query id\(s\) of mix_with have no text"):
        synth(config(tmp_path, data, f"mix_with={data / 'qrels' / 'bad.tsv'}",
                     f"examples={tmp_path / 'examples.txt'}"), llm=Stub())


def test_dev_fraction_writes_a_dev_qrels_file_disjoint_from_train(tmp_path):
    out = synth(config(tmp_path, corpus_folder(tmp_path / "data"), "dev_fraction=0.25"), llm=Stub())
    dev = {line.split("\t")[0] for line in (out / "qrels" / "dev.tsv").read_text().splitlines()[1:]}
    train = {line.split("\t")[0] for line in (out / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    assert len(dev) == 5 and len(train) == 15 and not dev & train


def test_config_problems_are_reported_together_before_anything_runs(tmp_path):
    cfg = config(tmp_path, tmp_path / "missing", "extra_temperature=0", "prompt=Write a query.",
                 "filters.max_copied_fraction=0")
    problems = check_synth_config(cfg)
    assert "extra_temperature must be > 0 (the questions after a passage's first are sampled), got 0.0." in problems
    assert any("prompt must contain {title}" in p for p in problems) and any("{text}" in p for p in problems)
    assert any("filters.max_copied_fraction" in p for p in problems)
    with pytest.raises(DataError) as err:
        synth(cfg, llm=Stub())
    assert "extra_temperature" in str(err.value) and "max_copied_fraction" in str(err.value)
    with pytest.raises(DataError, match="corpus file not found"):
        synth(config(tmp_path, tmp_path / "missing"), llm=Stub())


def test_a_text_folder_is_cut_into_the_passages_mining_reads(tmp_path, tiny_encoder):
    from rerankforge.data_prep.mine import load_labelled_data

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(3):
        (folder / f"note{i}.txt").write_text(" ".join(f"uniq{i}a word{j} uniq{i}b" for j in range(60)))
    out = synth(config(tmp_path, tmp_path, f"data.corpus={folder}", f"first_stage.encoder.name_or_path={tiny_encoder}",
                       "passages=null", "filters.round_trip_depth=0"), llm=Stub())
    mine = MineConfig()
    mine.first_stage.encoder.name_or_path = tiny_encoder
    mine.data.corpus, mine.data.queries, mine.data.qrels = str(folder), str(out / "queries.jsonl"), \
        str(out / "qrels" / "train.tsv")
    labelled = load_labelled_data(mine)
    assert len(labelled.corpus) > 3 and all("#" in d for d in labelled.corpus)  # chunked: passages, not files
    positives = {d for ds in labelled.positives.values() for d in ds}
    assert positives and positives <= set(labelled.corpus)


def test_a_random_passage_window_starts_at_a_sentence_and_is_seeded():
    from random import Random

    from rerankforge.data_prep.synth import build_prompt, passage_window

    words = "One two three. Four five six. Seven eight nine ten. Eleven twelve.".split()
    assert passage_window(words, 4, "start", Random(0)) == ["One", "two", "three.", "Four"]
    assert passage_window(words, 20, "random", Random(0)) == words  # shorter than the window: all of it
    windows = {tuple(passage_window(words, 4, "random", Random(seed))) for seed in range(40)}
    # the windows that fit start at the opening, "Four" or "Seven" ("Eleven" leaves fewer than 4 words)
    assert {w[0] for w in windows} == {"One", "Four", "Seven"} and all(len(w) == 4 for w in windows)
    cfg = SynthConfig(prompt="{title}|{text}{examples}", max_passage_words=4, passage_window="random")
    doc = {"title": "T", "text": " ".join(words)}
    assert build_prompt(cfg, "d1", doc, "") == build_prompt(cfg, "d1", doc, "")  # the same prompt on a rerun
    assert {build_prompt(cfg, f"d{i}", doc, "") for i in range(20)} > {"T|One two three. Four"}


@pytest.mark.parametrize("first_stage", ["bm25", "hybrid"])
def test_a_question_that_a_repeated_table_answers_on_many_pages_is_dropped_as_ambiguous(tmp_path, tiny_encoder,
                                                                                         first_stage):
    data = corpus_folder(tmp_path / "data", n=12)
    table = "Net income 2018 2017 2016 in USD millions: 4,858 4,858 5,050; capital expenditure 1,577 1,373 1,420."
    pages = [{"_id": f"report{k}", "title": f"Annual report {k}", "text": f"{table} {table}"} for k in range(4)]
    write_jsonl(data / "corpus.jsonl", [*map(json.loads, (data / "corpus.jsonl").read_text().splitlines()), *pages])

    class TableStub(Stub):
        def complete(self, prompts):
            asked = "What was the net income in 2018, 2017 and 2016?"
            return [Completion(asked, 50, 12) if "Net income" in p else Stub.complete(self, [p])[0] for p in prompts]

    def kept(*overrides):
        out = synth(config(tmp_path, data, "passages=null", "filters.round_trip_depth=10", f"first_stage={first_stage}",
                           f"first_stage.encoder.name_or_path={tiny_encoder}", *overrides), llm=TableStub())
        return set(read_queries(out).values()), json.loads((out / "manifest.json").read_text())["counts"]

    queries, counts = kept()
    # for each page's question the other three pages tie its own on BM25 and are within 2% on cosine (their
    # titles differ): more than max_as_close=2
    assert counts["dropped"]["ambiguous"] == 4 and "What was the net income in 2018, 2017 and 2016?" not in queries
    assert counts["dropped"]["duplicate"] == 0 and len(queries) == 12  # every unique page's question stays
    queries, counts = kept("filters.max_as_close=3")  # kept once, the other three as duplicates
    assert counts["dropped"]["ambiguous"] == 0 and counts["dropped"]["duplicate"] == 3
    assert "What was the net income in 2018, 2017 and 2016?" in queries
    assert check_synth_config(config(tmp_path, data, "filters.max_as_close=-1", "filters.ambiguity_margin=1")) == [
        "filters.max_as_close must be >= 0 or null (off), got -1.",
        "filters.ambiguity_margin must be in [0, 1), got 1.0."]
