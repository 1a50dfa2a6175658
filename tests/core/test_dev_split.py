"""The dev split: carved from the training queries (seeded), written with its first-stage candidates, and kept
out of both the training rows and the evaluation split."""

import json

from datasets import load_from_disk

from rerankforge.core.dev_split import carve_dev, read_dev


def test_carve_dev_sizes_and_seed():
    ids = [f"q{i}" for i in range(809)]
    dev = carve_dev(ids, 0.1, 50, seed=42)
    assert len(dev) == 81 and dev == sorted(dev) and set(dev) <= set(ids)
    assert dev == carve_dev(list(reversed(ids)), 0.1, 50, seed=42)  # input order does not matter
    assert dev != carve_dev(ids, 0.1, 50, seed=1)
    assert len(carve_dev(ids[:300], 0.1, 50, seed=42)) == 50  # at least min_queries where there are enough
    assert len(carve_dev(ids[:100], 0.1, 50, seed=42)) == 25  # but never more than a quarter
    assert carve_dev(ids, 0.0, 50, seed=42) == [] and carve_dev(ids[:3], 0.1, 50, seed=42) == []


def test_queries_of_one_passage_are_held_out_together():
    ids = [f"synth-d{i}-{j}" for i in range(40) for j in range(3)] + [f"real{i}" for i in range(10)]
    passage = lambda q: q.split("-")[1] if q.startswith("synth-") else None  # noqa: E731
    dev = carve_dev(ids, 0.1, 0, seed=42, group=passage)
    held = {passage(q) for q in dev if passage(q)}
    assert held and all(f"synth-{d}-{j}" in dev for d in held for j in range(3))  # never a passage split in two
    assert 13 <= len(dev) <= 15  # ceil(0.1 * 130) = 13, overshooting by less than one group
    # a group that would pass the quarter cap stays in training: one passage's 4 questions are never all held out
    held = carve_dev([f"synth-d0-{j}" for j in range(4)] + ["r1", "r2", "r3", "r4"], 0.5, 0, 42, group=passage)
    assert len(held) == 2 and all(q.startswith("r") for q in held)
    singles = [f"q{i}" for i in range(809)]  # no key shared: exactly the sample drawn without groups
    assert carve_dev(singles, 0.1, 50, 42, group=lambda q: q) == carve_dev(singles, 0.1, 50, 42)


def test_dev_queries_are_neither_trained_on_nor_test_queries(mined_dev):
    beir, out = mined_dev
    manifest = json.loads((out / "manifest.json").read_text())
    dev_ids = manifest["dev_query_ids"]
    trained = set(load_from_disk(str(out / "dataset"))["query_id"])
    test_ids = {line.split("\t")[0] for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    assert len(dev_ids) == 4 and not set(dev_ids) & trained and not set(dev_ids) & test_ids
    counts = manifest["counts"]
    assert counts["queries_dev"] + counts["queries_mined"] == counts["queries_labelled"] == 16
    records = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    assert [r["query_id"] for r in records] == dev_ids
    for record in records:
        assert len(record["doc_ids"]) == len(record["scores"]) == len(record["passages"]) == 6
        assert record["scores"] == sorted(record["scores"], reverse=True)  # RRF scores, best first
        assert record["qrels"] and all(v >= 1 for v in record["qrels"].values())


def test_read_dev_cuts_each_query_to_depth(mined_dev):
    _, out = mined_dev
    dev = read_dev(out / "dev.jsonl", depth=3)
    assert len(dev.qrels) == 4 and all(len(docs) == 3 for docs in dev.first_stage.values())
    assert len(dev.pairs) == 12 and dev.pairs[0][0] == sorted(dev.qrels)[0]
