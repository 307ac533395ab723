"""Stage: a class-balanced synthetic set for a dataset's train split, from its adapted model.

The plan (``synthdata.sampling.quotas``) says how many images each class gets; every image has
an id and a seed fixed by the run's inputs (``synthdata.sampling.jobs``) and, outside ``noise``
mode, a real train image (or two) of its class to start from (``synthdata.sampling.anchors``);
``synthdata.sampling.writer`` generates the batches and writes each image with its provenance. Images are written
one by one (temporary name, then rename) into ``.staging-<out>``; a killed run resumes there,
making only the batches that are not complete. When every image is there, the main process
writes the manifest (checked by the Great Expectations suite), ``metadata.csv``, optional
WebDataset shards and the card, and renames the folder into place. Started by
``accelerate launch`` with several processes, each makes a disjoint share of the batches and
the main process merges them. A lock beside the output refuses a second writer.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from synthdata.atomic import build_folder
from synthdata.config.recipe import Recipe
from synthdata.credentials.sign import signer_for
from synthdata.data.card import DatasetCard, read_card
from synthdata.data.manifest import class_counts, verify_dataset
from synthdata.data.writer import DatasetWriter, staging_path
from synthdata.errors import DataError, SynthdataError
from synthdata.locking import FolderLock
from synthdata.reporting.synthetic_set import synthetic_set_report
from synthdata.sampling.anchors import SourcePool, anchor_pool, anchored
from synthdata.sampling.jobs import Item, batches, plan_items, sample_run_id, shard
from synthdata.sampling.model import SamplingModel, attach_guide, load_sampling_model
from synthdata.sampling.processes import on_main_process, process_state, to_device
from synthdata.sampling.publish import SampledSet, publish_set
from synthdata.sampling.quotas import QuotaPlan, plan_quotas
from synthdata.sampling.settings import SampleSettings
from synthdata.sampling.writer import common_provenance, write_batches
from synthdata.tracking.lineage import link_adapter, log_dataset
from synthdata.tracking.mlflow_run import StageRun, find_run, stage_run


@dataclass
class SampleResult:
    plan: QuotaPlan
    run_id: str | None = None
    out: Path | None = None
    images: int = 0
    generated: int = 0
    """Images made by this process in this call (fewer than planned when resuming)."""
    seconds: float = 0.0
    mlflow_run_id: str | None = None
    report: list[Path] = field(default_factory=list)
    main: bool = True
    """False in the helper processes of a multi-process run (the main one merges and reports)."""


def plan_for(settings: SampleSettings, dataset: Path) -> tuple[QuotaPlan, DatasetCard]:
    """The quota plan over the real train counts of ``dataset`` (verified: the card's manifest
    hash is then the hash of the rows and files read), in the card's class order."""
    verified = verify_dataset(dataset)
    card = verified.card
    counts = class_counts(verified.frame, "train")
    real = {name: counts.get(name, 0) for name in card.classes}
    plan = plan_quotas(real, settings)
    return plan, card


def run_identity(model: SamplingModel, settings: SampleSettings, card: DatasetCard) -> dict[str, Any]:
    """What determines a run's images (hashed into its id). A noise-mode run's identity is
    unchanged by the real-anchored modes' settings, which it ignores."""
    identity: dict[str, Any] = {
        "adapter_sha256": model.adapter_sha256,
        "base_sha256": model.base_sha256,
        "source_manifest_sha256": card.manifest_sha256,
        "scheduler": settings.scheduler,
        "steps": settings.steps,
        "guidance": settings.guidance,
        "seed": settings.seed,
    }
    if settings.mode != "noise":
        identity.update(mode=settings.mode, strength=settings.strength)
    if settings.mode == "interpolate":
        identity["weight"] = settings.weight
    if settings.classifier_guidance:
        identity.update(classifier_guidance=settings.classifier_guidance, guide=asdict(settings.guide))
    return identity


def run_sample(
    recipe: Recipe,
    adapter: Path,
    dataset: Path,
    out: Path,
    *,
    report: Path | None = None,
    settings: SampleSettings | None = None,
    dry_run: bool = False,
) -> SampleResult:
    settings = settings or recipe.sample
    plan, card = plan_for(settings, dataset)
    if dry_run:
        return SampleResult(plan)
    if plan.synthetic == 0:
        raise SynthdataError(f"the '{settings.policy}' plan for {dataset} asks for no synthetic image (see --dry-run)")
    signer = signer_for(recipe.provenance.signing, dataset)  # its files checked before any work
    model = load_sampling_model(adapter, recipe.finetune.base)
    if model.classes != list(card.classes):
        raise DataError(f"{adapter} was trained on classes {model.classes}, but {dataset} has {list(card.classes)}")
    identity = run_identity(model, settings, card)
    run_id = sample_run_id(identity)
    attach_guide(model, settings, dataset)
    pool = anchor_pool(settings.mode, model, dataset, list(card.classes))
    items = anchored(plan_items(plan, list(card.classes), run_id), settings, pool, run_id)
    sampled = SampledSet(items, card, run_id, plan, settings, identity, recipe.name, signer)
    all_batches = batches(items, settings.batch_size)
    state = process_state()
    to_device(model.backbone, state.device)
    staging = staging_path(out)
    started = time.monotonic()
    with ExitStack() as stack:
        setup = partial(_open_run, stack, sampled, out, dataset, adapter, model.adapter_sha256, state.num_processes)
        opened, mlflow_run_id = on_main_process(state, setup)
        state.wait_for_everyone()  # staging exists and is this run's before anyone writes
        common = common_provenance(model, settings, card, run_id)
        generated = _write_share(state, model, all_batches, sampled, common, staging, pool)
        state.wait_for_everyone()
        result = SampleResult(plan, run_id, out, len(items), generated, time.monotonic() - started, mlflow_run_id)
        if not state.is_main_process:
            result.main = False
            return result
        writer, run = opened
        # tracking takes the figures before anything is published
        _log_figures(run, plan, len(items), generated, time.monotonic() - started)
        publish_set(writer, sampled, common, mlflow_run_id)
        result.seconds = time.monotonic() - started
        result.report = (
            build_folder(report, lambda folder: synthetic_set_report(out, folder, plan, recipe.name, dataset))
            if report
            else []
        )
        run.set_tags({"synthetic_manifest_sha256": read_card(out).manifest_sha256})
        for path in result.report:
            run.log_artifact(path, "grids" if path.parent.name == "grids" else None)
    return result


def _open_run(
    stack: ExitStack, sampled: SampledSet, out: Path, dataset: Path, adapter: Path, adapter_sha256: str, processes: int
) -> tuple[tuple[DatasetWriter, StageRun], str]:
    """On the main process: the lock on ``out``, the writer of its staging folder and the stage's
    MLflow run (reopened when a killed run of the same id left one), with the plan logged. The
    writer and the run, and the run's id for every process."""
    settings, run_id = sampled.settings, sampled.run_id
    stack.enter_context(FolderLock(out))
    writer = DatasetWriter(out, sampled.build_key())
    params = {"sample": asdict(settings), "dataset": dataset.name, "adapter": str(adapter), "processes": processes}
    resume = find_run("sample", sampled.recipe_name, sample_run_id=run_id)
    run = stack.enter_context(stage_run("sample", sampled.recipe_name, params, resume_run_id=resume))
    run.set_tags(
        {
            "sample_run_id": run_id,
            "manifest_sha256": sampled.card.manifest_sha256,
            "adapter_sha256": adapter_sha256,
        }
    )
    run.log_dict({"plan": sampled.plan.rows(), "identity": sampled.identity}, "plan.json")
    log_dataset(run, dataset, "train", split="train")  # the classes' counts, and img2img's sources
    link_adapter(run, sampled.recipe_name, adapter_sha256)
    return (writer, run), run.run_id


def _write_share(
    state: Any,
    model: SamplingModel,
    all_batches: list[list[Item]],
    sampled: SampledSet,
    common: dict[str, Any],
    staging: Path,
    pool: SourcePool | None,
) -> int:
    """This process's share of the batches, generated and written into ``staging``; how many
    images it made."""
    mine = shard(all_batches, state.process_index, state.num_processes)
    who = f" (process {state.process_index + 1}/{state.num_processes})" if state.num_processes > 1 else ""
    description = f"sample {sampled.recipe_name}{who}"
    settings, card, run_id = sampled.settings, sampled.card, sampled.run_id
    return write_batches(
        model, mine, settings, card, common, run_id, staging, description=description, pool=pool, signer=sampled.signer
    )


def _log_figures(run: StageRun, plan: QuotaPlan, images: int, generated: int, seconds: float) -> None:
    """The run's counts, time and throughput, and each class's synthetic quota."""
    run.log_metrics(
        {
            "images": images,
            "generated": generated,
            "seconds": seconds,
            "images_per_second": generated / max(seconds, 1e-9),
            **{f"synthetic.{q.name}": q.synthetic for q in plan.classes},
        }
    )
