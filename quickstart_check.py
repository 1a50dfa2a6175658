"""What ``rerankforge quickstart`` checks before any stage runs, all at once: every stage's config and data, the
models and packages the stages will load, whether the corpus is large enough for a training group, and how much of
the queries and documents the reranker reads (which can turn chunking on). Nothing here loads model weights or
encodes a text: a tokenizer is the most it loads.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from rerankforge.core.config import raise_problems
from rerankforge.core.dev_split import carve_dev
from rerankforge.core.io import resolve_cache_dir
from rerankforge.core.problems import DataError, Problem
from rerankforge.core.text import doc_text
from rerankforge.data_prep.config import MineConfig, SynthConfig, check_mine_config, check_synth_config
from rerankforge.data_prep.lengths import length_advice, measure_lengths, sample_rows, should_chunk
from rerankforge.data_prep.mine import load_labelled_data
from rerankforge.data_prep.synth import load_corpus_for_synth
from rerankforge.eval.config import EvalConfig, check_eval_config
from rerankforge.eval.data import load_eval_data
from rerankforge.models.llm import llm_install_problems
from rerankforge.models.loading import load_tokenizer
from rerankforge.models.resolve import availability_problem
from rerankforge.retrieval.corpus_store import ArrowCorpus, corpus_ids, take_texts
from rerankforge.retrieval.loaders import load_query_texts
from rerankforge.train.config import TrainConfig, check_train_config

if TYPE_CHECKING:
    from rerankforge.quickstart import Plan, QuickstartConfig

LENGTH_KEYS = {"chunking": "mine.data.chunking.mode", "max_length": "train.model.max_length",
               "max_query_length": "train.model.max_query_length"}


@dataclass
class Checked:
    """What the checks found that the run uses: the length figures (``LengthStats.as_dict`` of ``queries`` and
    ``documents``), whether they turned chunking on, and notes to print before the stages run."""

    lengths: dict[str, dict] = field(default_factory=dict)
    chunk: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Texts:
    """What the length and size checks read: the corpus size and a sample of its texts, the queries, and how many
    positives each training query has."""

    corpus_size: int = 0
    documents: list[str] = field(default_factory=list)  # a seeded sample (data_prep/lengths.py)
    queries: list[str] = field(default_factory=list)
    positive_counts: list[int] = field(default_factory=list)  # per training query (1 for each synthetic one)


def qualify(text: str, stage: str, schema: type, leading_key: bool = False) -> str:
    """Config keys in a stage's message as the quickstart spells them: ``data.answers`` → ``eval.data.answers``
    (and, with ``leading_key``, a config problem's first word: ``batch_size must be ...``)."""
    names = "|".join(f.name for f in dataclasses.fields(schema))
    text = re.sub(rf"(?<![\w./<-])((?:{names})\.[A-Za-z_])", rf"{stage}.\1", text)
    return re.sub(rf"^((?:{names})(?=[ =]))", rf"{stage}.\1", text) if leading_key else text


def check_quickstart_config(cfg: QuickstartConfig) -> list[str]:
    """Problems with the quickstart's own keys and between stages (each stage's keys: ``config_problems``)."""
    problems = []
    if cfg.synthetic_max_steps is not None and cfg.synthetic_max_steps < 1:
        problems.append(f"synthetic_max_steps must be >= 1 (or null: train.max_steps), got {cfg.synthetic_max_steps}.")
    if cfg.synthetic_max_epochs is not None and cfg.synthetic_max_epochs <= 0:
        problems.append(f"synthetic_max_epochs must be > 0 (or null: no cap), got {cfg.synthetic_max_epochs}.")
    if not 0 < cfg.test_fraction < 1:
        problems.append(f"test_fraction must be in (0, 1), got {cfg.test_fraction}.")
    m, want = cfg.mine.mining, cfg.train.data.group_size - 1
    if want > m.num_negatives + m.random_negatives:
        problems.append(f"train.data.group_size={cfg.train.data.group_size} needs {want} negatives per training row, "
                        f"but mining writes mine.mining.num_negatives + mine.mining.random_negatives = "
                        f"{m.num_negatives} + {m.random_negatives}: raise one of them or set train.data.group_size="
                        f"{m.num_negatives + m.random_negatives + 1}.")
    return problems


def config_problems(plan: Plan, own: Sequence[str] = ()) -> dict[str, list[str]]:
    """Config problems by stage (``quickstart``: ``own``), worded with the quickstart's key names; reads no file."""
    checks = {"synth": (check_synth_config, SynthConfig), "mine": (check_mine_config, MineConfig),
              "train": (check_train_config, TrainConfig), "eval": (check_eval_config, EvalConfig)}
    problems = {"quickstart": list(own)}
    for stage in plan.stages:
        check, schema = checks[stage]
        problems[stage] = [qualify(p, stage, schema, leading_key=True) for p in check(plan.config(stage))]
    return problems


def environment_problems(plan: Plan) -> list[str]:
    """The models the stages load that this machine cannot get, and the packages cold start lacks."""
    problems = [availability_problem(plan.train.model.name_or_path, "train.model.name_or_path")]
    if plan.mine.first_stage.uses_encoder:
        problems.append(availability_problem(plan.mine.first_stage.encoder.name_or_path,
                                             "mine.first_stage.encoder.name_or_path"))
    if plan.synth:
        problems += llm_install_problems(plan.synth.generator, "synth.generator")
    return [p for p in problems if p]


def _document_sample(corpus) -> tuple[int, list[str]]:
    """The corpus size and the texts of a seeded sample of its documents (only those are built)."""
    ids = corpus_ids(corpus)
    rows = sample_rows(len(ids))
    if isinstance(corpus, ArrowCorpus):
        return len(ids), list(take_texts(corpus.texts, rows))
    return len(ids), [doc_text(corpus[ids[r]]) for r in rows]


def _load_texts(plan: Plan, by_stage: dict[str, list[str]], data: list[Problem]) -> Texts:
    """The texts of the data the stages read, appending every data problem to ``data`` (keys qualified)."""
    def qualified(problems, stage: str, schema: type) -> list[Problem]:
        return [dataclasses.replace(p, message=qualify(p.message, stage, schema)) for p in problems]

    texts = Texts()
    try:
        if plan.synth and not by_stage["synth"]:
            corpus, _ = load_corpus_for_synth(plan.synth)
            texts.corpus_size, texts.documents = _document_sample(corpus)
            texts.positive_counts = [1]  # every synthetic query has its one passage
        elif not plan.synth and not by_stage["mine"]:  # what `rerankforge mine` checks first: files, loaders, validate
            labelled = load_labelled_data(plan.mine)
            texts.corpus_size, texts.documents = _document_sample(labelled.corpus)
            texts.queries = [labelled.queries[q] for q in labelled.positives]
            texts.positive_counts = [len(p) for p in labelled.positives.values()]
    except DataError as exc:
        data += qualified(exc.problems, plan.stages[0], SynthConfig if plan.synth else MineConfig)
    try:
        labelled_eval = load_eval_data(plan.eval.data, cache_dir=resolve_cache_dir(plan.eval.cache_dir))
        if not labelled_eval.qrels:
            data.append(Problem(f"no query with a positive label in the eval split (eval.data.split="
                                f"{plan.eval.data.split}); nothing to evaluate.", labelled_eval.sources.get("qrels")))
        texts.queries += [labelled_eval.queries[q] for q in labelled_eval.qrels]
        pick = plan.eval.retrieve.pick.queries
        if plan.eval.first_stage.method == "auto" and pick and not load_query_texts(pick, plan.eval.data.fields):
            data.append(Problem("query_log holds no question to pick the first stage with.", pick))
    except DataError as exc:
        data += qualified(exc.problems, "eval", EvalConfig)
    return texts


def size_problems(corpus_size: int, positives: Sequence[int], group_size: int) -> list[Problem]:
    """A corpus too small for a training group: an error when no query has ``group_size - 1`` documents beside
    its positives, a warning counting the queries that have not (their rows are left out of training)."""
    want = group_size - 1
    short = sum(1 for p in positives if corpus_size - p < want)
    if not short:
        return []
    fewest = corpus_size - max(positives)
    message = (f"the corpus has {corpus_size:,} documents, so {short:,} of {len(positives):,} training queries have "
               f"fewer than the {want} negatives a training group of train.data.group_size={group_size} needs")
    if short < len(positives):
        return [Problem(f"{message}; their rows are left out of training.", level="warning")]
    return [Problem(f"{message} (no query has them). Set train.data.group_size={max(fewest + 1, 2)} or lower, and "
                    "mine.mining.num_negatives + mine.mining.random_negatives to match.")]


def dev_problems(plan: Plan, training_queries: int) -> list[Problem]:
    """The fused reranker's weight is fitted on the dev split mining holds out: without one, say so now, not
    after training."""
    data = plan.mine.data
    if carve_dev([str(i) for i in range(training_queries)], data.dev_fraction, data.dev_min_queries, 0):
        return []
    fusion = plan.eval.rerankers["finetuned"].fusion
    if fusion.method == "none" or "auto" not in (fusion.method, fusion.alpha):
        return []
    return [Problem(f"{training_queries} training queries with mine.data.dev_fraction={data.dev_fraction} leave no "
                    "dev split (it needs at least 4 queries), and eval.rerankers.finetuned.fusion "
                    f"(method={fusion.method}, alpha={fusion.alpha}) fuses by the weight fitted on it. Give more "
                    "labelled queries, or set eval.rerankers.finetuned.fusion.method=none.")]


def check_all(plan: Plan, own: Sequence[str] = ()) -> Checked:
    """Every stage's config and data checks, before any compute (no model weights are loaded, nothing is encoded;
    a model found nowhere on this machine is asked of the Hub, 10 s at most, and the reranker's tokenizer is read).

    Runs the checks each stage starts with (synth's config and corpus checks with synthetic labels; mining's config
    checks, loaders and validation, ``load_labelled_data``; the train and eval config checks and
    ``load_eval_data``), checks that the models and packages the stages load are here, that the corpus can fill a
    training group, and measures query and document lengths in the reranker's tokens (``data_prep/lengths.py``):
    with ``plan.auto_chunk``, documents mostly past the reranker's budget turn chunking on (``Checked.chunk``).

    ``own``: the quickstart's own config problems (``check_quickstart_config``), reported with the rest.

    Raises:
        DataError: every problem found (config problems included). ConfigError: config problems only.
    """
    by_stage = config_problems(plan, own)
    config = [p for problems in by_stage.values() for p in problems] + environment_problems(plan)
    data: list[Problem] = []
    texts = _load_texts(plan, by_stage, data)
    if texts.positive_counts and texts.corpus_size:
        data += size_problems(texts.corpus_size, texts.positive_counts, plan.train.data.group_size)
    if not plan.synth and texts.positive_counts:  # synthetic queries are counted only once generated
        data += dev_problems(plan, len(texts.positive_counts))
    errors = [p for p in data if p.level == "error"]
    if errors:
        raise DataError([Problem(p) for p in config] + errors)
    if config:
        raise_problems(config)
    for warning in data:
        logging.getLogger("rerankforge.quickstart").warning("%s", warning)
    return check_lengths(plan, texts)


def check_lengths(plan: Plan, texts: Texts) -> Checked:
    """Query and document lengths in the reranker's tokens against its limits; the notes they call for."""
    model = plan.train.model
    stats = measure_lengths(load_tokenizer(model.name_or_path, model.gguf_file), texts.queries, texts.documents,
                            model.max_length, model.max_query_length)
    chunk = plan.auto_chunk and should_chunk(stats["documents"])
    return Checked({kind: s.as_dict() for kind, s in stats.items()}, chunk,
                   length_advice(stats, LENGTH_KEYS, chunking_on=chunk))
