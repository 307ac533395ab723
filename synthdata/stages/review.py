"""Stage: a person's review of a synthetic set.

Without decisions: the review page (``synthdata.review.page``). With them: a reviewed version of
the set (``synthdata.review.apply``), logged to MLflow as a ``review`` run of the set's recipe:
counts as metrics, reviewer and hashes as tags, the decisions file as an artifact.
"""

from __future__ import annotations

from pathlib import Path

from synthdata.credentials.settings import SigningSettings
from synthdata.credentials.sign import SigningIdentity
from synthdata.data.card import read_card
from synthdata.review.apply import ReviewedSet, apply_review
from synthdata.review.page import ReviewPage, review_page
from synthdata.tracking.lineage import log_dataset
from synthdata.tracking.mlflow_run import stage_run

__all__ = ["ReviewPage", "ReviewedSet", "run_review_apply", "run_review_page"]


def run_review_page(set_folder: Path, dataset: Path, out: Path, *, real_per_class: int = 8) -> ReviewPage:
    return review_page(set_folder, dataset, out, real_per_class=real_per_class)


def run_review_apply(set_folder: Path, decisions: Path, out: Path, signing: SigningSettings) -> ReviewedSet:
    """Publish the reviewed set ``out``; signed by ``signing``'s identity when the set is signed."""
    files = signing.files()
    identity = SigningIdentity.load(*files) if files is not None else None
    card = read_card(set_folder)
    recipe = str((card.derived_from or {}).get("recipe") or card.name)
    params = {"set": set_folder.name, "decisions": Path(decisions).name, "out": out.name}
    with stage_run("review", recipe, params, output=out) as run:
        result = apply_review(set_folder, decisions, out, identity)
        run.log_metrics({f"review.{k}": v for k, v in result.counts.items()} | {"review.images": result.images})
        run.set_tags(
            {
                "reviewer": result.decisions.reviewer,
                "reviewed_set": card.name,
                "reviewed_set_manifest_sha256": result.decisions.set_manifest_sha256,
                "synthetic_manifest_sha256": result.manifest_sha256,
                "decisions_sha256": result.decisions.sha256,
                "signer": result.signer or "unsigned",
            }
        )
        run.log_artifact(Path(decisions), "review")
        log_dataset(run, set_folder, "validated")
    return result
