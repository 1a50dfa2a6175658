"""The LLM judge: pointwise and listwise scores, failures counted (never fatal), the journal that lets a killed run
resume without asking twice, an endpoint answering garbage or 500, and a real llama.cpp server."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import free_port

from rerankforge.models.judge import Judge, JudgeConfig, JudgeJournal, check_judge_config
from rerankforge.models.llm import Completion, NextToken

QUERY = "What is the capital of Canada?"
DOCS = ["Bananas are rich in potassium.", "Ottawa is the capital of Canada.", "Toronto is the largest city in Canada.",
        "The capital of France is Paris."]


class FakeLLM:
    """Says yes with P(yes) = 0.9 to passages that mention Ottawa, 0.6 to Canada, 0.2 otherwise; ``broken``
    passages get ``broken``'s answer (an exception to raise, or a reply text)."""

    def __init__(self, broken: dict | None = None, delay: float = 0.0):
        self.broken, self.delay, self.prompts = broken or {}, delay, []

    def _p(self, prompt: str) -> float:
        return 0.9 if "Ottawa" in prompt else 0.6 if "largest city in Canada" in prompt else 0.2

    def next_token(self, prompts, top=20):
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            time.sleep(self.delay)
            for word, answer in self.broken.items():
                if word in prompt:
                    if isinstance(answer, Exception):
                        raise answer
                    out.append(NextToken({answer: -0.1}, answer, 10))
                    break
            else:
                p = self._p(prompt)
                out.append(NextToken({"Yes": math.log(p), "No": math.log(1 - p)}, "Yes", 10 + len(prompt) // 10))
        return out

    def complete(self, prompts, temperature=None):
        self.prompts += prompts
        return [Completion(self.broken.get("listwise", "Ranking: [2] > [3] > [2] and then the rest"), 50, 9)
                for _ in prompts]


def judge(tmp_path, llm, **kwargs) -> Judge:
    return Judge(JudgeConfig(kind="openai", model="m", base_url="http://x", journal=str(tmp_path / "j.jsonl"),
                             **kwargs), llm=llm)


def test_pointwise_scores_are_the_log_odds_of_yes(tmp_path):
    j = judge(tmp_path, FakeLLM())
    logits = j.score(QUERY, DOCS, raw=True)
    assert logits == pytest.approx([math.log(0.2 / 0.8), math.log(9), math.log(1.5), math.log(0.25)])
    assert j.score(QUERY, DOCS) == pytest.approx([0.2, 0.9, 0.6, 0.2])  # P(yes) / (P(yes) + P(no))
    assert j.usage.calls == 4 and j.usage.cached == 4  # the second call was answered from the journal
    assert j.usage.prompt_tokens > 2 * 4 * 10


def test_failed_calls_are_counted_retried_and_rank_below_the_judged(tmp_path):
    llm = FakeLLM(broken={"Bananas": TimeoutError("read timed out"), "Paris": "Perhaps"})
    j = judge(tmp_path, llm, retries=2)
    logits = j.score(QUERY, DOCS, raw=True)
    assert logits[1] > logits[2] > logits[0] > logits[3]  # failed ones last, in the order given
    assert j.usage.failures["timeout"] == 1 and j.usage.failures["unparseable"] == 1
    assert j.usage.retries == 4 and j.usage.calls == 2 + 2 * 3
    assert "Perhaps" in j.usage.last_error
    assert sum(1 for p in llm.prompts if "Bananas" in p) == 3
    j.score(QUERY, DOCS)  # failures are not journalled: a rerun asks them again
    assert sum(1 for p in llm.prompts if "Bananas" in p) == 6


def test_listwise_reorders_by_the_parsed_permutation(tmp_path):
    j = judge(tmp_path, FakeLLM(), mode="listwise", window=3, step=2)
    scores = j.score(QUERY, DOCS)
    # windows [1, 4) then [0, 2): the first call puts shown [2] first, then [3]; the second promotes its [2]
    ranked = [DOCS[i] for i in sorted(range(4), key=lambda i: -scores[i])]
    assert ranked[0] == DOCS[2] and len(set(scores)) == 4
    assert j.usage.calls == 2 and j.usage.completion_tokens == 18


def test_listwise_garbage_keeps_the_window_order(tmp_path):
    j = judge(tmp_path, FakeLLM(broken={"listwise": "I cannot rank these."}), mode="listwise", retries=0)
    assert j.score(QUERY, DOCS) == [4.0, 3.0, 2.0, 1.0]
    assert j.usage.failures["unparseable"] == 1


def test_the_journal_skips_a_line_cut_by_a_kill(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"key": "a", "value": {"logit": 1.0}}) + "\n" + '{"key": "b", "val')
    journal = JudgeJournal(path)
    assert journal.done == {"a": {"logit": 1.0}}
    journal.add("c", {"logit": 2.0})
    assert JudgeJournal(path).done == {"a": {"logit": 1.0}, "c": {"logit": 2.0}}


KILLED = '''
import sys, time
sys.path[:0] = [{tests!r}, {models!r}]
from test_judge import FakeLLM, judge
from pathlib import Path
docs = ["passage number %d about Canada" % i for i in range(40)]
judge(Path({tmp!r}), FakeLLM(delay=0.05)).score("q", docs)
'''


def test_a_killed_judge_run_resumes_without_scoring_twice(tmp_path):
    script = tmp_path / "run.py"
    here = Path(__file__).parent
    script.write_text(KILLED.format(tests=str(here.parent), models=str(here), tmp=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=Path(__file__).parents[1])
    journal = tmp_path / "j.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 10):
        assert proc.poll() is None, "the judge run ended before it was killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(JudgeJournal(journal).done)
    assert 10 <= done < 40
    llm = FakeLLM()
    docs = [f"passage number {i} about Canada" for i in range(40)]
    resumed = judge(tmp_path, llm).score("q", docs)
    assert len(llm.prompts) == 40 - done  # nothing asked twice
    (tmp_path / "fresh").mkdir()
    assert resumed == judge(tmp_path / "fresh", FakeLLM()).score("q", docs)  # the same scores as a run never killed


class GarbageHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint gone wrong: 500 for one passage, invalid JSON for another, a verdict-free
    reply for a third, and a proper answer (with logprobs) for the rest."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        if "Bananas" in prompt:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "boom"}')
            return
        if "Paris" in prompt:
            payload = b"<html>not json"
        else:
            content = "Hmm" if "Toronto" in prompt else "Yes"
            logprobs = None if "Toronto" in prompt else {"content": [{"token": "Yes", "logprob": -0.1, "bytes": None,
                                                                       "top_logprobs": [
                                                                           {"token": "Yes", "logprob": -0.1},
                                                                           {"token": "No", "logprob": -2.4}]}]}
            payload = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                  "choices": [{"index": 0, "finish_reason": "length", "logprobs": logprobs,
                                               "message": {"role": "assistant", "content": content}}],
                                  "usage": {"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_an_endpoint_answering_garbage_or_500_is_counted_not_fatal(tmp_path):
    pytest.importorskip("openai")
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), GarbageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        j = Judge(JudgeConfig(kind="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", retries=1,
                              timeout_s=5, journal=str(tmp_path / "j.jsonl")))
        logits = j.score(QUERY, DOCS, raw=True)
    finally:
        server.shutdown()
    assert logits[1] == pytest.approx(2.3)  # the one good answer: log-odds of its logprobs
    assert logits[1] > logits[0] and logits[1] > logits[2] and logits[1] > logits[3]
    failures = j.usage.failures
    assert failures["server_error"] == 1 and failures["unparseable"] == 1 and sum(failures.values()) == 3
    assert j.usage.prompt_tokens == 30


def test_check_judge_config_names_the_key():
    cfg = JudgeConfig(mode="listwise", window=5, step=5, pointwise_prompt="x")
    problems = check_judge_config(cfg, "rerankers.j.llm")
    assert any("rerankers.j.llm.kind=transformers needs rerankers.j.llm.model" in p for p in problems)
    assert any("step < window" in p for p in problems)
    assert not any("pointwise_prompt" in p for p in problems)  # the listwise judge does not use it


@pytest.mark.slow
def test_a_real_llama_cpp_server_answers_judge_calls(llama_cpp_server, tmp_path):
    cfg = JudgeConfig(kind="openai", base_url=llama_cpp_server, model="smollm2", journal=str(tmp_path / "j.jsonl"))
    j = Judge(cfg)
    scores = j.score(QUERY, DOCS)
    assert len(scores) == 4 and all(0 < s < 1 for s in scores)
    assert sum(j.usage.failures.values()) == 0 and j.usage.calls == 4 and j.usage.prompt_tokens > 4 * 20
    listwise = Judge(JudgeConfig(kind="openai", base_url=llama_cpp_server, model="smollm2", mode="listwise",
                                 journal=str(tmp_path / "l.jsonl"), retries=0))
    assert sorted(listwise.score(QUERY, DOCS)) == [1.0, 2.0, 3.0, 4.0]  # a permutation, whatever it answered
    assert listwise.usage.calls == 1 and listwise.usage.completion_tokens > 0
