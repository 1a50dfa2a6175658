"""What training fits on the kept checkpoint's dev scores, beside it in ``final/``: the fusion weight
(``fusion.json``) and Platt calibration (``calibration.json``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rerankforge.core.config import from_dict
from rerankforge.core.io import write_json
from rerankforge.data_prep.config import MineConfig
from rerankforge.models.calibration import CALIBRATION_FILE, calibrate
from rerankforge.models.fusion import FUSION_FILE, fit_fusion

logger = logging.getLogger("rerankforge.train")
BEST_DEV_RUN = "best_dev_run.json"  # the kept checkpoint's dev scores from selection, beside best/
FITTED_DEV_RUN = "fusion_dev_run.json"  # the scores fusion.json and calibration.json were fitted on


def selection_scores(out: Path, dev) -> dict | None:
    """The kept checkpoint's dev scores from selection, when saved for every dev pair (a resumed run may lack
    them, or have scored another dev set)."""
    path = out / BEST_DEV_RUN
    scores = json.loads(path.read_text()) if path.exists() else None
    if scores is None or any(d not in scores.get(q, {}) for q, d, _, _ in dev.pairs):
        return None
    return scores


def write_fusion(final: Path, dev, dev_run: dict | None, mine_config: dict,
                 max_passage_tokens: int | None = None) -> dict | None:
    """Fit the fusion weight on the kept model's dev scores (``dev_run``) and write it beside the checkpoint."""
    if dev_run is None or not dev.qrels:
        logger.warning("No dev scores of the kept checkpoint in %s: no fusion weight fitted. eval can still fuse "
                       "with rerankers.<name>.fusion.method=interpolation and a fusion.alpha.", final.parent)
        return None
    spec = from_dict(MineConfig, mine_config).first_stage
    fusion = fit_fusion(dev.qrels, dev.first_stage, dev_run, rrf_k=spec.rrf_k)
    fusion.update(first_stage=spec.describe(), dev_queries=len(dev.qrels),
                  depth=max((len(docs) for docs in dev.first_stage.values()), default=0),
                  max_passage_tokens=max_passage_tokens)
    write_json(final / FUSION_FILE, fusion)
    if fusion["rule"] == "tie_break":
        logger.warning("Only %d of %d dev queries leave the first stage room to improve (%s below 1): too few to "
                       "fit a fusion weight, so the reranker gets the tie-break weight %.2f. A dev split of real "
                       "queries fits one.", fusion["open_queries"], len(dev.qrels), fusion["metric"], fusion["alpha"])
    logger.info("Fusion fitted on %d dev queries: %s alpha=%.2f, dev %s %.4f (reranker alone %.4f, first "
                "stage %.4f).", len(dev.qrels), fusion["method"], fusion["alpha"], fusion["metric"],
                fusion["methods"][fusion["method"]][fusion["metric"]], fusion["reranker_alone"],
                fusion["first_stage_alone"])
    return fusion


def write_calibration(final: Path, dev, dev_run: dict | None) -> dict | None:
    """Fit Platt scaling on the kept model's dev logits (``dev_run``) and write ``calibration.json`` beside it.

    Skipped, with a warning, when there are no dev scores, no relevant (or only relevant) candidates, or the fit
    would reverse the ranking (a non-positive slope): scores then stay the plain sigmoid of the logit."""
    if dev_run is None:
        logger.warning("No dev scores of the kept checkpoint in %s: no calibration fitted.", final.parent)
        return None
    try:
        fitted = calibrate(dev.qrels, dev_run)
    except ValueError as exc:
        logger.warning("No calibration fitted: %s", exc)
        return None
    if fitted["a"] <= 0:
        logger.warning("No calibration written: the dev fit has slope %.3f, which would reverse the ranking.",
                       fitted["a"])
        return None
    write_json(final / CALIBRATION_FILE, fitted)
    logger.info("Calibration fitted on %d dev pairs (%d relevant): P = sigmoid(%.3f * logit + %.3f); ECE %.4f "
                "(plain sigmoid %.4f).", fitted["dev_pairs"], fitted["dev_positives"], fitted["a"], fitted["b"],
                fitted["ece"]["calibrated"], fitted["ece"]["sigmoid"])
    return fitted
