"""The training loop on a tiny random BERT: outputs, dev metrics, checkpoints that load everywhere, resume."""

import json
from pathlib import Path

import pytest
import torch
from conftest import DOCS, QUERY, train_cfg

from rerankforge.train.run import main


def test_training_writes_final_model_metrics_manifest_and_card(mined, beir_dir, tmp_path, tiny_cross_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run"))
    out = final.parent
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 for r in records)
    evals = [r for r in records if "dev/ndcg@10" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(0 <= r["dev/ndcg@10"] <= 1 and 0 <= r["dev/first_stage_ndcg@10"] <= 1 for r in evals)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 4 and manifest["best_dev_ndcg@10"] == max(r["dev/ndcg@10"] for r in evals)
    assert manifest["counts"]["groups"] == 8 and len(manifest["inputs"]["train"]["sha256"]) == 64
    card = (final / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and "listwise_ce" in card and "## Evaluation results" in card
    assert "## Intended use and limitations" in card
    assert (out / "config.yaml").exists()


def test_mined_dev_split_selects_the_checkpoint_and_fits_fusion(mined_dev, tmp_path, tiny_cross_encoder):
    from rerankforge.core.dev_split import read_dev
    from rerankforge.core.metrics import evaluate_run

    beir, mined = mined_dev
    final = main(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "run", "data.dev=mined", "data.dev_depth=6"))
    fusion = json.loads((final / "fusion.json").read_text())
    assert fusion["method"] in ("interpolation", "rrf") and 0 <= fusion["alpha"] <= 1
    assert fusion["dev_queries"] == 4 and fusion["depth"] == 6 and fusion["first_stage"]["method"] == "hybrid"
    # the curve's end points are the first stage alone and the kept checkpoint alone, on the mined dev split
    dev = read_dev(mined / "dev.jsonl", 6)
    best_run = json.loads((final.parent / "best_dev_run.json").read_text())
    assert fusion["first_stage_alone"] == pytest.approx(evaluate_run(dev.qrels, dev.first_stage)["ndcg@10"])
    assert fusion["reranker_alone"] == pytest.approx(evaluate_run(dev.qrels, best_run)["ndcg@10"])
    manifest = json.loads((final.parent / "manifest.json").read_text())
    assert manifest["best_dev_ndcg@10"] == pytest.approx(fusion["reranker_alone"])
    assert manifest["fusion"]["alpha"] == fusion["alpha"]
    assert f"alpha {fusion['alpha']:.2f}" in (final / "README.md").read_text()


def test_dev_max_passage_tokens_fits_fusion_on_the_dev_passages_read_as_windows(mined_dev, tmp_path,
                                                                                 tiny_cross_encoder):
    from rerankforge.core.dev_split import read_dev
    from rerankforge.core.metrics import evaluate_run
    from rerankforge.models.reranker import Reranker

    beir, mined = mined_dev
    final = main(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "run", "data.dev=mined", "data.dev_depth=6",
                           "model.max_length=16", "model.max_query_length=6", "data.dev_max_passage_tokens=64"))
    fusion = json.loads((final / "fusion.json").read_text())
    assert fusion["max_passage_tokens"] == 64
    dev = read_dev(mined / "dev.jsonl", 6)
    scores = Reranker(str(final), device="cpu", max_passage_tokens=64).score_pairs(
        [(query, passage) for _, _, query, passage in dev.pairs], raw=True)
    windows: dict = {}
    for (query_id, doc_id, _, _), logit in zip(dev.pairs, scores):
        windows.setdefault(query_id, {})[doc_id] = logit
    cut = json.loads((final.parent / "best_dev_run.json").read_text())  # what picked the checkpoint
    fitted = json.loads((final.parent / "fusion_dev_run.json").read_text())  # what fusion and calibration saw
    assert any(windows[q][d] != pytest.approx(cut[q][d], abs=1e-4) for q in cut for d in cut[q])
    assert all(fitted[q][d] == pytest.approx(windows[q][d], abs=1e-4) for q in windows for d in windows[q])
    assert fusion["reranker_alone"] == pytest.approx(evaluate_run(dev.qrels, windows)["ndcg@10"])
    manifest = json.loads((final.parent / "manifest.json").read_text())
    assert manifest["fusion"]["max_passage_tokens"] == 64
    assert "Dev nDCG@10 (long passages read as windows, up to 64 tokens" in (final / "README.md").read_text()


def test_dev_scores_for_fusion_cut_queries_as_training_does(mined_dev, tmp_path, tiny_cross_encoder, monkeypatch):
    import rerankforge.models.reranker as reranker_module

    seen = []
    original = reranker_module.Reranker.__init__

    def record(self, *args, **kwargs):
        seen.append(kwargs.get("max_query_length"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(reranker_module.Reranker, "__init__", record)
    beir, mined = mined_dev
    main(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "run", "data.dev=mined", "data.dev_depth=6",
                   "model.max_query_length=9", "data.dev_max_passage_tokens=64"))
    assert seen == [9]


def test_eval_delay_ratio_skips_the_early_evaluations_but_never_the_last(mined, beir_dir, tmp_path,
                                                                         tiny_cross_encoder):
    from rerankforge.train.config import TrainConfig, check_train_config

    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "eval_every=1",
                           "eval_delay_ratio=0.5"))
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "dev/ndcg@10" in r] == [2, 3, 4]  # of 4 steps
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "share", "eval_every=1",
                           "eval_delay_ratio=0.55"))  # 2.2 steps: from step 3
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "dev/ndcg@10" in r] == [3, 4]
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "late", "eval_delay_ratio=1"))
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "dev/ndcg@10" in r] == [4]
    assert "eval_delay_ratio must be in [0, 1] (a share of the steps), got 1.5." in check_train_config(
        TrainConfig(eval_delay_ratio=1.5))


def test_the_training_model_is_released_before_the_windows_pass_loads_final(mined_dev, tmp_path, tiny_cross_encoder,
                                                                             monkeypatch):
    import gc
    import weakref

    import rerankforge.train.run as run

    beir, mined = mined_dev
    training, alive_at_windows_pass = [], []
    setup, score_dev_windows = run.setup, run.score_dev_windows

    def spy_setup(cfg):
        state = setup(cfg)
        training.extend(weakref.ref(x) for x in (state.model, state.optimizer, state.scheduler, state.train_dl,
                                                 state.dev_dl))
        return state

    def spy_windows_pass(*args, **kwargs):
        gc.collect()
        alive_at_windows_pass.extend(ref() is not None for ref in training)
        return score_dev_windows(*args, **kwargs)

    monkeypatch.setattr(run, "setup", spy_setup)
    monkeypatch.setattr(run, "score_dev_windows", spy_windows_pass)
    final = main(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "run", "data.dev=mined", "data.dev_depth=6",
                           "data.dev_max_passage_tokens=96"))
    assert alive_at_windows_pass == [False] * 5
    assert (final / "fusion.json").exists() and (final.parent / "manifest.json").exists()


def test_training_with_a_dev_split_fits_a_calibration_unless_it_would_reverse_the_ranking(mined_dev, tmp_path,
                                                                                         tiny_cross_encoder, caplog):
    beir, mined = mined_dev
    final = main(train_cfg(mined, beir, tiny_cross_encoder, tmp_path / "run", "data.dev=mined", "data.dev_depth=6"))
    # the tiny random model ranks the dev split worse than chance: a fitted scale would turn its order around
    assert not (final / "calibration.json").exists()
    assert "No calibration written: the dev fit has slope -" in caplog.text


@pytest.mark.parametrize("dropout", [None, 0.0])
def test_every_step_trains_in_train_mode_with_the_configured_dropout(mined, beir_dir, tmp_path, tiny_cross_encoder,
                                                                     monkeypatch, dropout):
    import rerankforge.train.run as run

    seen, original = [], run.group_scores

    def spy(model, batch, group_size):
        if torch.is_grad_enabled():  # a training step, not the sanity check
            seen.append((model.training, {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}))
        return original(model, batch, group_size)

    monkeypatch.setattr(run, "group_scores", spy)
    main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "eval_every=2",
                   f"model.dropout={'null' if dropout is None else dropout}"))
    # from_pretrained hands back a model in eval mode; the loop must not train the first steps without dropout
    assert [training for training, _ in seen] == [True] * 4
    assert all(ps == ({0.1} if dropout is None else {0.0}) for _, ps in seen)


def test_mixed_precision_auto_follows_the_hardware():
    from rerankforge.models.loading import bf16_is_fast
    from rerankforge.train.run import resolve_precision

    assert resolve_precision("auto") == ("bf16" if bf16_is_fast("cpu") else "no")
    assert resolve_precision("False") == "no" and resolve_precision("bf16") == "bf16"


def test_final_loads_everywhere_with_the_same_scores(mined, beir_dir, tmp_path, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from rerankforge.models.reranker import Reranker

    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "data.dev=null"))
    query, docs = "cat sat on the mat", ["the cat sat", "dogs run for food", "protein in the blood of mice"]
    ours = Reranker(str(final), device="cpu")
    ranked = ours.rerank(query, docs, top_n=2)
    assert [r["index"] for r in ranked] == sorted(range(3), key=lambda i: -ours.score(query, docs)[i])[:2]
    expected = ours.score(query, docs)
    ce = CrossEncoder(str(final), device="cpu").predict([(query, d) for d in docs])
    assert ce.tolist() == pytest.approx(expected, abs=1e-5)
    tokenizer = AutoTokenizer.from_pretrained(final)
    model = AutoModelForSequenceClassification.from_pretrained(final).eval()
    with torch.no_grad():
        logits = model(**tokenizer([query] * 3, docs, padding=True, return_tensors="pt")).logits.view(-1)
    assert logits.tolist() == pytest.approx(ours.score(query, docs, raw=True), abs=1e-5)
    pipe = pipeline("text-classification", model=str(final), device="cpu", function_to_apply="sigmoid")
    assert [pipe({"text": query, "text_pair": d})["score"] for d in docs] == pytest.approx(expected, abs=1e-5)


def test_bi_encoder_start_gets_a_fresh_head(mined, beir_dir, tmp_path, tiny_encoder):
    final = main(train_cfg(mined, beir_dir, tiny_encoder, tmp_path / "run", "data.dev=null", "max_steps=1"))
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(final).config.num_labels == 1


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(mined, beir_dir, tmp_path, tiny_cross_encoder,
                                                              monkeypatch):
    from accelerate import Accelerator
    from safetensors.torch import load_file

    extra = ("data.dev=null", "max_steps=6", "save_every=3", "epochs=3")  # step 3 is mid-epoch (4 batches)
    whole = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "whole", *extra))

    original = Accelerator.save_state

    def save_then_die(self, *args, **kwargs):  # a crash right after the first checkpoint (step 3)
        result = original(self, *args, **kwargs)
        Path(result, ".complete").touch()
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Accelerator, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "killed", *extra))
    monkeypatch.setattr(Accelerator, "save_state", original)
    resumed = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "killed", *extra, "resume_from=latest"))
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5)
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(mined, beir_dir, tmp_path, tiny_cross_encoder):
    """The real thing: `python train/run.py` killed with SIGKILL, then resumed from the latest complete checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    script = Path(__file__).resolve().parents[2] / "train" / "run.py"

    def command(out, *more):
        return [sys.executable, str(script), f"model.name_or_path={tiny_cross_encoder}", "model.max_length=48",
                "model.max_query_length=16", f"data.train={mined}", "data.group_size=4", "batch_size=2",
                "max_steps=40", "epochs=20", "save_every=3", "optim.lr=1e-3", f"output_dir={out}", *more]

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen(command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "killed").glob("checkpoints/checkpoint_*/.complete")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final").exists()
    subprocess.run(command(tmp_path / "killed", "resume_from=latest"), check=True, capture_output=True, timeout=300)
    a = load_file(str(tmp_path / "whole" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_two_cpu_processes_report_the_same_dev_metrics_as_one(mined, beir_dir, tmp_path, tiny_cross_encoder):
    """Two CPU processes (`accelerate launch --multi_gpu --num_processes 2` without a GPU: torchrun, one gloo
    group): dev scores are gathered, so metrics equal the 1-process ones."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "train" / "run.py"
    args = [f"model.name_or_path={tiny_cross_encoder}", "model.max_length=48", "model.max_query_length=16",
            f"data.train={mined}", "data.group_size=4", f"data.dev={beir_dir}", "data.dev_split=test",
            "data.dev_depth=7", "batch_size=1",
            "max_steps=2", "eval_every=1", "optim.lr=0.0"]  # lr 0: both runs evaluate the same weights
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    for n, launcher in ((1, [sys.executable]), (2, launch + ["--num_processes", "2"])):
        out = subprocess.run(launcher + [str(script), *args, f"output_dir={tmp_path / str(n)}"],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads((tmp_path / str(n) / "manifest.json").read_text())["processes"] == n
    one, two = ([json.loads(line) for line in (tmp_path / str(n) / "metrics.jsonl").read_text().splitlines()]
                for n in (1, 2))
    for a, b in zip(one, two):
        for key in ("dev/ndcg@10", "dev/mrr@10", "dev/first_stage_ndcg@10"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key


@pytest.mark.parametrize("setup", ["full", "lora-adapter", "lora-merged"])
def test_save_then_reload_gives_the_scores_of_the_trained_model(mined, beir_dir, tmp_path, tiny_cross_encoder,
                                                               final_logits, setup):
    """sentence-transformers #3980: a reloaded LoRA reranker must not lose its trained head."""
    from rerankforge.models.reranker import Reranker

    lora = [] if setup == "full" else ["lora.enabled=true", "lora.r=4", f"lora.export={setup.split('-')[1]}"]
    final = main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "data.dev=null", *lora))
    assert (final / "adapter_config.json").exists() == (setup == "lora-adapter")
    reloaded = Reranker(str(final), device="cpu", max_length=48).score(QUERY, DOCS, raw=True)
    assert reloaded == pytest.approx(final_logits["logits"], abs=1e-5)
    start = Reranker(tiny_cross_encoder, device="cpu", max_length=48).score(QUERY, DOCS, raw=True)
    assert reloaded != pytest.approx(start, abs=1e-4)  # training changed the scores, head included


def test_lora_trains_the_head_and_only_adapters_elsewhere(tiny_cross_encoder):
    from rerankforge.models.loading import add_lora, head_modules, load_seq_cls

    model = load_seq_cls(tiny_cross_encoder)
    assert head_modules(model) == ["classifier", "pooler"]
    peft_model = add_lora(model, r=4, alpha=8, dropout=0.0, target_modules=["all-linear"])
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("classifier" in n for n in trainable) and any("pooler" in n for n in trainable)
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)


def test_a_new_run_numbers_its_checkpoints_after_an_earlier_runs(tmp_path):
    from rerankforge.train.checkpoint import next_checkpoint_number

    assert next_checkpoint_number(tmp_path) == 0
    for name in ("checkpoint_0", "checkpoint_4", "checkpoint_x", "other"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert next_checkpoint_number(tmp_path) == 5  # checkpoint_4 incomplete or not: never written over


def test_training_again_into_the_same_folder_starts_afresh(mined, beir_dir, tmp_path, tiny_cross_encoder):
    extra = ("data.dev=null", "max_steps=4", "save_every=1", "keep_checkpoints=2")
    main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", *extra))
    first = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()}
    main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", *extra))  # e.g. the mined set changed
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    newest = max(int(name.split("_")[1]) for name in first)
    second = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert len(second) == 2 and all(int(name.split("_")[1]) > newest for name in second)  # numbered after them


def test_max_epochs_caps_max_steps_on_small_data_only():
    from rerankforge.train.config import TrainConfig, check_train_config
    from rerankforge.train.run import training_steps

    assert training_steps(TrainConfig(max_steps=200), 20) == 200  # 10 passes: no cap set
    assert training_steps(TrainConfig(max_steps=200, max_epochs=3), 20) == 60  # 80 rows at batch 4: 3 passes
    assert training_steps(TrainConfig(max_steps=200, max_epochs=3), 187) == 200  # 750 rows: 1.1 passes, as set
    assert training_steps(TrainConfig(epochs=2.5, max_epochs=1), 10) == 25  # without max_steps, epochs rules
    problems = check_train_config(TrainConfig(max_epochs=0))
    assert "max_epochs must be > 0 or null (no cap on max_steps), got 0." in problems


def test_lengths_past_the_models_positions_are_named_before_training(mined, beir_dir, tmp_path, tiny_cross_encoder):
    from rerankforge.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"model.max_length=512 is more than .* has positions \(128\); "
                                          r"set model.max_length<=128"):
        main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "model.max_length=512"))
    assert not (tmp_path / "run" / "final").exists()
