"""`rerankforge quickstart` in a reduced mode on the real SciFact (few queries, few steps): every output exists,
the printed table and the report agree with the run files, and a second run reuses every stage. On a tiny BEIR
folder (train and eval faked): every stage's config and data are checked before any compute, and a failing stage
ends in one StageError whose rerun reuses the finished stages."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from conftest import SHARED_DATA, make_beir, write_jsonl

from rerankforge.cli import main
from rerankforge.core.metrics import evaluate_run
from rerankforge.eval.report import read_trec
from rerankforge.quickstart_summary import FIRST_STAGE_NAMES

ROOT = Path(__file__).resolve().parents[1]

REDUCED = ["mine.max_queries=40", "train.max_steps=4", "train.batch_size=2", "train.model.max_length=96",
           "train.save_every=null", "eval.data.max_queries=12", "eval.rerankers.finetuned.depth=5",
           "eval.rerankers.finetuned.max_length=96", "eval.retrieve.top_k=20"]


@pytest.mark.slow
def test_reduced_quickstart_writes_everything_and_reuses_finished_stages(tmp_path, monkeypatch, capsys):
    if not (SHARED_DATA / "scifact").exists():
        pytest.skip("real data not found")
    monkeypatch.setenv("RERANKFORGE_DATA_DIR", str(SHARED_DATA))
    out = tmp_path / "qs"
    assert main(["quickstart", f"output_dir={out}", *REDUCED]) == 0
    printed = capsys.readouterr().out
    for path in ("mine/manifest.json", "mine/dataset", "train/final/model.safetensors", "train/final/README.md",
                 "train/metrics.jsonl", "eval/report.md", "eval/report.json", "eval/per_query.jsonl",
                 "eval/runs/first_stage.trec", "eval/runs/finetuned.trec", "eval/plots/ndcg_at_k.png", "stages.json"):
        assert (out / path).exists(), path
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["data"]["queries"] == 12
    qrels = {}
    for line in (SHARED_DATA / "scifact" / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    qrels = {q: qrels[q] for q in sorted(qrels)[:12]}
    finetuned = report["rerankers"]["finetuned"]
    runs = {f"first_stage-{m}": report["first_stages"][m]["metrics"] for m in ("bm25", "dense", "hybrid")}
    runs.update({"finetuned": finetuned["metrics"], "finetuned-alone": finetuned["alone"]["metrics"]})
    for run_name, metrics in runs.items():  # every printed row is its run file's metrics
        got = evaluate_run(qrels, read_trec(out / "eval" / "runs" / f"{run_name}.trec"), ["ndcg@10", "mrr@10"])
        assert metrics["ndcg@10"] == pytest.approx(got["ndcg@10"], abs=1e-6), run_name
        assert f"{metrics['ndcg@10']:.4f}" in printed and f"{metrics['mrr@10']:.4f}" in printed
    # mining held out a dev split and picked the first stage on it; eval reranked that one, fused by the fitted weight
    manifest = json.loads((out / "mine" / "manifest.json").read_text())
    picked = manifest["config"]["first_stage"]["method"]
    assert len(manifest["dev_query_ids"]) == 10 and report["first_stage"]["method"] == picked
    assert (f"First stage reranked: {FIRST_STAGE_NAMES[picked]}; why: it had the best nDCG@10 on the dev split "
            f"mining held out ({picked} {manifest['first_stage_selection'][picked]:.4f}") in printed
    # the recipe learns from the labels and from the first stage's scores of every group
    trained = json.loads((out / "train" / "manifest.json").read_text())
    assert trained["counts"]["has_teacher"] and trained["config"]["loss"]["distill"] == "kl_distill"
    assert trained["config"]["loss"]["teacher"] == "first_stage"
    fusion = json.loads((out / "train" / "final" / "fusion.json").read_text())
    assert finetuned["fusion"] == {"method": fusion["method"], "alpha": fusion["alpha"]}
    best = report["best_first_stage"]
    # the best first stage's row is marked: "(best)", or "(reranked, best)" when mining picked it too
    label = f"| first stage: {FIRST_STAGE_NAMES[best]} ("
    best_row = next(line for line in printed.splitlines() if line.startswith(label))
    assert "best)" in best_row and printed.count("best)") == 1
    assert f"Final ranking vs the best first stage ({best})" in printed
    alone = finetuned["alone"]["vs_best_first_stage"]["ndcg@10"]
    assert finetuned["max_passage_tokens"] == 4096 and finetuned["max_length"] == 96  # what training saved
    assert fusion["max_passage_tokens"] == 4096  # its weight was fitted on dev passages read as eval reads them
    assert (f"The reranker alone (no fusion; long passages read as windows, as the Cohere route reads them; "
            f"CrossEncoder(final) cuts them) vs {best}: nDCG@10 {alone['delta']:+.4f}") in printed
    assert f"checkpoint: {out / 'train' / 'final'}" in printed
    # the test split's figures joined the card's model-index, so the checkpoint publishes as it is
    from huggingface_hub import ModelCard

    from rerankforge.models.publish import PushConfig, push

    card = ModelCard.load(out / "train" / "final" / "README.md")
    assert {r.metric_config for r in card.data.eval_results} == {"reranked"}  # the model's own figures only
    rows = json.loads((out / "train" / "final" / "eval_results.json").read_text())
    tested = {(r["metric_config"], r["metric_type"]): r["metric_value"] for r in rows if r["dataset_split"] == "test"}
    assert tested[("first_stage", "ndcg_at_10")] == report["first_stage"]["metrics"]["ndcg@10"]
    assert tested[("reranked", "ndcg_at_10")] == finetuned["alone"]["metrics"]["ndcg@10"]
    assert tested[("fused", "ndcg_at_10")] == finetuned["metrics"]["ndcg@10"]
    assert "Dry run" in push(PushConfig(model=str(out / "train" / "final"), dry_run=True, out=str(tmp_path / "up")))

    assert main(["quickstart", f"output_dir={out}", *REDUCED]) == 0  # again: nothing is recomputed
    again = capsys.readouterr().out
    assert again.count("unchanged since its last run") == 3
    import shutil

    shutil.copytree(out, tmp_path / "moved")  # a finished folder moved elsewhere is still reused
    assert main(["quickstart", f"output_dir={tmp_path / 'moved'}", *REDUCED]) == 0
    assert capsys.readouterr().out.count("unchanged since its last run") == 3
    assert main(["quickstart", f"output_dir={out}", *REDUCED[:-1], "eval.retrieve.top_k=10"]) == 0
    assert capsys.readouterr().out.count("unchanged since its last run") == 2  # only eval reran


# mining for real (BM25: no model), training and evaluation faked: the quickstart's own logic, in seconds
TINY = ["mine.first_stage.method=bm25", "mine.data.dev_fraction=0", "mine.mining.range_max=30",
        "mine.mining.num_negatives=3", "mine.mining.relative_margin=null", "train.data.dev=null",
        "train.data.group_size=4", "eval.rerankers.finetuned.fusion.method=none"]
REPORT = {"first_stage": {"method": "bm25"}, "first_stages": {}, "best_first_stage": "bm25",
          "rerankers": {"finetuned": {}}}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(argv of a tiny quickstart, its output folder, the stages that ran); train writes final/, eval raises
    whatever ``calls["eval_error"]`` holds (else writes a report)."""
    import rerankforge.data_prep.mine as mine_module
    import rerankforge.eval.run as eval_run
    import rerankforge.quickstart as qs
    import rerankforge.quickstart_summary as quickstart_summary

    beir, out, calls = make_beir(tmp_path / "beir"), tmp_path / "qs", {"ran": [], "eval_error": None}
    real_mine = mine_module.mine

    def mine(cfg):
        calls["ran"].append("mine")
        return real_mine(cfg)

    def train(cfg, folder, stages):
        calls["ran"].append("train")
        (Path(cfg.output_dir) / "final").mkdir(parents=True)

    def evaluate(cfg, command):
        calls["ran"].append("eval")
        if calls["eval_error"]:
            raise calls["eval_error"]
        Path(cfg.output_dir).mkdir(parents=True)
        (Path(cfg.output_dir) / "report.json").write_text(json.dumps(REPORT))

    monkeypatch.setattr(mine_module, "mine", mine)
    monkeypatch.setattr(qs, "_run_train", train)
    monkeypatch.setattr(eval_run, "evaluate", evaluate)
    monkeypatch.setattr(quickstart_summary, "summary_table", lambda result: "summary table")
    return ["quickstart", f"data={beir}", f"output_dir={out}", *TINY], out, calls


def test_bad_answers_file_fails_before_any_stage_runs_naming_the_keys(tiny, capsys):
    argv, out, calls = tiny
    beir = Path(argv[1].split("=", 1)[1])
    write_jsonl(beir / "answers.jsonl", [{"_id": f"t{i}", "final_decision": "yes", "long_answer": "cats"}
                                         for i in range(1000)])
    assert main([*argv, "train.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert calls["ran"] == [] and not (out / "mine").exists()  # nothing was computed
    assert err.startswith("rerankforge quickstart: error: Found 2 problem(s)")
    assert len(err.splitlines()) == 3  # one problem for the whole answers file, not one per record
    assert "eval.data.answers_field=long_answer" in err and "eval.data.answers=none" in err
    assert "['_id', 'final_decision', 'long_answer']" in err
    assert "train.batch_size must be >= 1, got 0." in err  # every stage's problems at once
    assert main([*argv, "eval.data.answers_field=long_answer"]) == 0  # the fix it names works
    assert calls["ran"] == ["mine", "train", "eval"]


def test_a_failing_stage_is_one_error_and_the_rerun_reuses_the_finished_stages(tiny, capsys):
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, StageError, quickstart

    argv, out, calls = tiny
    calls["eval_error"] = RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
    cfg = load_config(QuickstartConfig, Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml", argv[1:])
    with pytest.raises(StageError) as err:
        quickstart(cfg)
    message, log = str(err.value), out / "eval-error.log"
    assert err.value.stage == "eval" and err.value.log == log and err.value.exit_code == 1
    assert len(message.splitlines()) == 1
    assert message.startswith(f"the eval stage failed (input: the data folder {argv[1].split('=', 1)[1]} and the "
                              f"checkpoint {out / 'train' / 'final'}): RuntimeError: CUDA out of memory. "
                              "(+1 more lines)")
    assert "the finished stages (mine, train) are kept and reused" in message and str(log) in message
    assert "Traceback (most recent call last)" in log.read_text() and "Tried to allocate" in log.read_text()
    assert calls["ran"] == ["mine", "train", "eval"]

    calls["eval_error"] = None  # the fault removed: only eval runs again
    capsys.readouterr()
    result = quickstart(cfg)
    assert calls["ran"] == ["mine", "train", "eval", "eval"]
    assert capsys.readouterr().out.count("unchanged since its last run") == 2
    assert result["stages"]["mine"]["reused"] and result["stages"]["train"]["reused"]
    assert not result["stages"]["eval"]["reused"]


def test_a_failing_train_process_is_a_stage_error_with_its_error_line(tmp_path, monkeypatch):
    import subprocess

    import rerankforge.quickstart as qs
    from rerankforge.train.config import TrainConfig

    def fake_run(command, env):  # what `rerankforge train` does when it fails (cli.main writes the log)
        assert command[-3:-1] == ["train", "--config"]
        Path(env[qs.ERROR_LOG_ENV]).write_text("rerankforge train: error: ValueError: no rows (full traceback: x)\n\n"
                                               "Traceback ...\n")
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(qs.subprocess, "run", fake_run)
    train = TrainConfig(output_dir=str(tmp_path / "train"))
    train.data.train = str(tmp_path / "mine")
    with pytest.raises(qs.StageError) as err:
        qs._run_train(train, tmp_path, ("mine", "train", "eval"))
    message = str(err.value)
    assert message.startswith(f"the train stage failed (input: the mined set {tmp_path / 'mine'} and the model ")
    assert "ValueError: no rows" in message and "the finished stage (mine) is kept and reused" in message
    assert err.value.log == tmp_path / "train-error.log" and err.value.exit_code == 1

    monkeypatch.setattr(qs.subprocess, "run", lambda command, env: subprocess.CompletedProcess(command, -9))
    with pytest.raises(qs.StageError) as err:  # killed: no log from the process; the quickstart writes one
        qs._run_train(train, tmp_path, ("mine", "train", "eval"))
    assert "killed by signal 9 (out of memory?)" in str(err.value) and (tmp_path / "train-error.log").exists()


class WordStub:
    """A generator stand-in asking about four words of its passage (BM25 finds the passage for them)."""

    batch_size = 8

    def complete(self, prompts, temperature=None):
        from rerankforge.models.llm import Completion

        first = 1 if temperature is None else 2  # a sampled question asks about other words
        return [Completion("which " + " ".join(p.split("Passage: ", 1)[1].split(". ", 1)[1].split()[first:9:2]) + "?",
                           30, 6) for p in prompts]


@pytest.mark.parametrize("labels", ["synthetic", "mixed"])
def test_cold_start_runs_synth_first_and_mines_its_queries_instead_of_the_train_labels(tiny, monkeypatch, capsys,
                                                                                       labels):
    import rerankforge.models.llm as llm

    argv, out, calls = tiny
    monkeypatch.setattr(llm, "load_llm", lambda cfg, device=None: WordStub())
    argv = [*argv, f"labels={labels}", "synth.first_stage=bm25", "synth.min_passage_words=5"]
    assert main(argv) == 0
    assert calls["ran"] == ["mine", "train", "eval"] and (out / "synth" / "manifest.json").exists()
    printed = capsys.readouterr().out
    assert "[1/4] synth ..." in printed and "[4/4] eval ..." in printed
    assert "note: labels=synthetic" not in printed  # the first stage is set (bm25)
    manifest = json.loads((out / "mine" / "manifest.json").read_text())
    assert manifest["inputs"]["queries"]["path"] == str(out / "synth" / "queries.jsonl")
    assert manifest["inputs"]["qrels"]["path"] == str(out / "synth" / "qrels" / "train.tsv")
    synth_counts = json.loads((out / "synth" / "manifest.json").read_text())["counts"]
    real = 6 if labels == "mixed" else 0  # make_beir's train queries q0..q5
    assert synth_counts["real_queries_mixed_in"] == real
    assert manifest["counts"]["queries_labelled"] == synth_counts["queries_kept"] + real > real
    assert main(argv) == 0  # again: every stage reused, synth included
    assert capsys.readouterr().out.count("unchanged since its last run") == 4


def prepared(tmp_path, labels="real"):
    from rerankforge.quickstart_data import Prepared
    from rerankforge.retrieval.sources import beir_source

    folder = make_beir(tmp_path / "beir")
    return Prepared(beir_source(folder, str(folder)), labels, folder / "qrels" / "test.tsv",
                    folder / "qrels" / "train.tsv")


def test_cold_start_with_an_automatic_first_stage_pick_mines_behind_hybrid_and_says_so(tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, wire
    from rerankforge.quickstart_data import cold_start_note

    def note(labels, *overrides):
        cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml", list(overrides))
        return cold_start_note(cfg, labels), wire(cfg, prepared(tmp_path, labels)).mine.first_stage.method

    text, candidates = note("synthetic")
    assert "set mine.first_stage.method=bm25|dense|hybrid" in text.lower() and candidates == "hybrid"
    assert "or give query_log=FILE (your users' questions, no labels)" in text
    assert note("synthetic", "mine.first_stage.method=bm25") == (None, "bm25")
    assert note("real") == (None, "auto") and note("mixed")[0] is None  # real dev queries pick the first stage


def test_mining_records_why_the_first_stage_was_chosen(tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.data_prep.output import first_stage_why
    from rerankforge.quickstart import QuickstartConfig, wire

    def why(labels, selection, *overrides):
        cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml", list(overrides))
        mine = wire(cfg, prepared(tmp_path, labels)).mine
        return first_stage_why(mine, selection)

    picked = why("real", {"bm25": 0.61, "hybrid": 0.7, "dense": 0.5})
    assert picked == ("it had the best nDCG@10 on the dev split mining held out "
                      "(hybrid 0.7000, bm25 0.6100, dense 0.5000)")
    assert why("synthetic", None).startswith("labels=synthetic leaves no real labels to pick one with")
    assert why("synthetic", None, "mine.first_stage.method=dense") == "first_stage.method=dense in the config"


@pytest.mark.parametrize("labels, steps, epochs", [("synthetic", 7, 2.5), ("mixed", 300, None), ("real", 300, None)])
def test_synthetic_max_steps_sets_the_training_length_only_for_synthetic_labels(tmp_path, labels, steps, epochs):
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, wire

    cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml",
                      [f"labels={labels}", "synthetic_max_steps=7", "synthetic_max_epochs=2.5", "train.max_steps=300"])
    train = wire(cfg, prepared(tmp_path, labels)).train
    assert (train.max_steps, train.max_epochs) == (steps, epochs)


def test_a_synthetic_max_steps_below_one_is_refused_before_anything_runs(capsys):
    assert main(["quickstart", "labels=synthetic", "synthetic_max_steps=0"]) == 2
    assert "synthetic_max_steps must be >= 1 (or null: train.max_steps), got 0." in capsys.readouterr().err


def test_a_bad_synthetic_max_steps_is_reported_with_the_stages_problems_and_not_as_train_max_steps(capsys):
    assert main(["quickstart", "labels=synthetic", "synthetic_max_steps=0", "synthetic_max_epochs=0",
                 "train.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert "synthetic_max_steps must be >= 1" in err and "train.batch_size" in err
    assert "synthetic_max_epochs must be > 0 (or null: no cap), got 0" in err
    assert "train.max_steps must be" not in err and "max_epochs must be > 0 or null" not in err


def test_config_problems_are_reported_with_a_data_set_that_cannot_be_found(tmp_path, capsys):
    assert main(["quickstart", f"data={tmp_path / 'missing'}", "synthetic_max_steps=0", "train.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert "synthetic_max_steps must be >= 1" in err and "train.batch_size must be >= 1" in err
    assert f"--data {tmp_path / 'missing'}: no such file or folder. Give a BEIR folder" in err


def test_the_stages_share_mines_first_stage_block(tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, wire

    cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml",
                      ["labels=mixed", "mine.first_stage.method=bm25", "mine.first_stage.bm25.k1=1.1",
                       "mine.first_stage.encoder.batch_size=16", "eval.retrieve.top_k=50"])
    plan = wire(cfg, prepared(tmp_path, "mixed"))
    assert plan.eval.first_stage == dataclasses.replace(plan.mine.first_stage, reason=None)
    # the round trip filters with its own method (hybrid by default) over mine's encoder, index and BM25
    assert dataclasses.replace(plan.synth.first_stage, method="bm25") == plan.mine.first_stage
    assert plan.synth.first_stage.method == "hybrid"
    assert (plan.eval.first_stage.bm25.k1, plan.eval.first_stage.encoder.batch_size) == (1.1, 16)
    assert plan.eval.retrieve.top_k == 50
    auto = wire(load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml"), prepared(tmp_path))
    assert auto.mine.first_stage.method == "auto" and auto.eval.first_stage.method == "hybrid"  # until mining picks



def test_the_quickstarts_eval_reranks_at_the_length_training_saved(tmp_path):
    """No max_length of its own: eval reads the checkpoint's (train.model.max_length), as CrossEncoder(final) does,
    so a run with train.model.max_length=384 is not evaluated at 256."""
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, wire

    cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml", ["train.model.max_length=384"])
    plan = wire(cfg, prepared(tmp_path))
    assert plan.train.model.max_length == 384 and plan.eval.rerankers["finetuned"].max_length is None

def test_files_set_by_hand_win_over_the_prepared_ones(tmp_path):
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, wire

    cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.yaml",
                      ["mine.data.queries=my-queries.jsonl", "eval.data.qrels=my-test.tsv"])
    plan = wire(cfg, prepared(tmp_path))
    assert plan.mine.data.queries == "my-queries.jsonl" and plan.eval.data.qrels == "my-test.tsv"
    assert plan.mine.data.corpus == str(tmp_path / "beir" / "corpus.jsonl")  # the rest: the prepared files


def test_a_100_passage_corpus_runs_cold_start_to_the_end(tmp_path, monkeypatch, tiny_encoder, tiny_cross_encoder,
                                                         capsys):
    """Corpus and test questions only, every stage for real with tiny models: 4 questions per passage, the dev split
    by whole passages, the training length capped by passes, and a report against the best first stage."""
    import random

    from conftest import WORDS, write_qrels

    import rerankforge.models.llm as llm
    from rerankforge.data_prep.synth import synthetic_passage

    rng, folder = random.Random(0), tmp_path / "small"
    write_jsonl(folder / "corpus.jsonl", [{"_id": f"p{i}", "title": f"page {i}",
                                           "text": " ".join(rng.choices(WORDS, k=24))} for i in range(100)])
    write_jsonl(folder / "queries.jsonl", [{"_id": f"t{i}", "text": " ".join(rng.choices(WORDS, k=5))}
                                           for i in range(10)])
    write_qrels(folder / "qrels" / "test.tsv", [(f"t{i}", f"p{7 * i}", 1) for i in range(10)])
    monkeypatch.setattr(llm, "load_llm", lambda cfg, device=None: WordStub())
    out = tmp_path / "qs"
    argv = ["quickstart", f"data={folder}", f"output_dir={out}",
            f"mine.first_stage.encoder.name_or_path={tiny_encoder}", f"train.model.name_or_path={tiny_cross_encoder}", "train.model.max_length=96", "synthetic_max_epochs=0.1",
            "eval.rerankers.finetuned.max_length=96", f"mine.cache_dir={tmp_path / 'cache'}"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    synth = json.loads((out / "synth" / "manifest.json").read_text())
    assert synth["counts"]["passages_sampled"] == 100 and synth["config"]["queries_per_passage"] == 4
    assert synth["counts"]["queries_generated"] == 400
    mined = json.loads((out / "mine" / "manifest.json").read_text())
    labelled = {line.split("\t")[0] for line in (out / "synth" / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    dev = {synthetic_passage(q) for q in mined["dev_query_ids"]}
    assert dev and not dev & {synthetic_passage(q) for q in labelled - set(mined["dev_query_ids"])}
    trained = json.loads((out / "train" / "manifest.json").read_text())
    rows = mined["counts"]["rows"]
    assert trained["steps"] == math.ceil(0.1 * math.ceil(rows / 4)) < 200  # 0.1 passes at batch 4
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["data"]["queries"] == 10 and report["first_stage"]["method"] == "hybrid"
    assert (out / "train" / "final" / "model.safetensors").exists()
    # the summary, the report and the card say which first stage and why
    why = "labels=synthetic leaves no real labels to pick one with"
    assert f"First stage reranked: {FIRST_STAGE_NAMES['hybrid']}; why: {why}" in printed
    assert mined["first_stage"]["method"] == "hybrid"
    assert f"Why this first stage: {why}" in (out / "eval" / "report.md").read_text()
    assert f"`hybrid`, because {why}" in (out / "train" / "final" / "README.md").read_text()

    log = tmp_path / "log.txt"  # a query log: eval alone reruns, reranking the stage the reranker's choices favour
    log.write_text("\n".join(" ".join(rng.choices(WORDS, k=5)) for _ in range(6)))
    assert main([*argv, f"query_log={log}"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("unchanged since its last run") == 3 and "[4/4] eval ..." in printed
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["first_stage"]["why"].startswith("its ranking agreed best with the finetuned reranker's choices")
    assert f"First stage reranked: {FIRST_STAGE_NAMES[report['first_stage']['method']]}; why: its ranking" in printed
