"""Lineage in MLflow: the datasets a stage run read or wrote, and the adapter version it made or used.

A dataset folder is logged as an input of the run (``mlflow.data``), named after the folder (and
split) with the manifest's sha256 as its digest. An adapter becomes a version of the registered
model ``synthdata-<recipe>-adapter``, tagged with the sha256 of its weights, its base and the
manifest it was trained on; the runs that sample from it or validate its images carry that
version's URI. The MLflow UI then leads from a synthetic set to the adapter that made it, and on
to the fine-tuning run and its data.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.data.card import read_card
from synthdata.data.manifest import read_manifest
from synthdata.tracking.mlflow_run import StageRun, _tracking, store_root

CONTEXTS = ("train", "val", "test", "synthetic", "validated", "source")
"""What a run did with a dataset it logs: trained or validated on a real split, made it
(``synthetic``), kept it after validation (``validated``), or read it as a source."""
MAX_DIGEST = 36
"""MLflow's longest dataset digest (``MAX_DATASET_DIGEST_SIZE``): a manifest's sha256 is cut to it
and kept whole in the input's ``manifest_sha256`` tag."""
LOGGED_COLUMNS = ("id", "label", "label_name", "split", "sha256", "width", "height", "channels", "mode")
"""The manifest columns a logged dataset keeps, those present (MLflow records their schema and
the row count, not the rows)."""
ADAPTER_ARTIFACTS = "adapter"
"""Where a fine-tuning run keeps the adapter's files among its artifacts."""
UNREGISTERED = "unregistered"
_MODEL_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
"""A recipe name kept as it is in a registered model's name: no ``/`` or ``:`` (MLflow refuses
them) and nothing a ``models:/`` URI or a filter string would need quoted."""


@dataclass(frozen=True)
class AdapterVersion:
    """One version of a recipe's registered adapter model."""

    name: str
    version: int

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def log_dataset(run: StageRun, folder: Path, context: str, *, split: str | None = None) -> None:
    """Log the dataset in ``folder`` (only the rows of ``split``, if given) as an input of ``run``,
    used in ``context`` (one of :data:`CONTEXTS`).

    The input is named ``<folder name>`` or ``<folder name>/<split>``; MLflow keeps one input per
    name and digest in a run, so logging the same folder and split again (a resumed run) adds
    nothing. A split the manifest does not hold is a :class:`ValueError`.
    """
    folder = Path(folder).resolve()
    _log_rows(run, folder, read_manifest(folder), read_card(folder), context, split)


def _log_rows(run: StageRun, folder: Path, frame: Any, card: Any, context: str, split: str | None) -> None:
    """:func:`log_dataset` on a manifest ``frame`` and ``card`` already read."""
    if context not in CONTEXTS:
        raise ValueError(f"dataset context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    import mlflow

    if split is not None:
        frame = frame[frame["split"] == split]
        if frame.empty:
            raise ValueError(f"{folder}: the manifest has no rows in split {split!r}")
    columns = [name for name in LOGGED_COLUMNS if name in frame.columns]
    tags = {"manifest_sha256": card.manifest_sha256, "split": split or "all", "rows": str(len(frame))}
    _check_active(mlflow, run)
    with warnings.catch_warnings():
        # mlflow registers its local file source for both the "" and "file" schemes, then warns
        # that a plain path matches two sources (the same class twice)
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        # and its schema inference warns that integer columns cannot hold missing values (a
        # concern of model signatures; a manifest's integer columns have none)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        dataset = mlflow.data.from_pandas(
            frame[columns].reset_index(drop=True),
            source=str(folder),
            name=folder.name if split is None else f"{folder.name}/{split}",
            digest=card.manifest_sha256[:MAX_DIGEST],
        )
        mlflow.log_input(dataset, context=context, tags=tags)


def log_splits(run: StageRun, folder: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> list[str]:
    """Log each of ``splits`` that the dataset in ``folder`` holds as an input of ``run``, in the
    context of the same name; the splits logged (a dataset may have no val split)."""
    folder = Path(folder).resolve()
    frame, card = read_manifest(folder), read_card(folder)  # read once for every split
    held = [split for split in splits if sum(card.counts.get(split, {}).values()) > 0]
    for split in held:
        _log_rows(run, folder, frame, card, split, split)
    return held


def adapter_model_name(recipe: str) -> str:
    """The registered model holding ``recipe``'s adapters. A recipe name that cannot stand in it
    as it is has each odd character made ``_`` and a digest of the original added, so two such
    names never share a model."""
    if _MODEL_PART.fullmatch(recipe):
        return f"synthdata-{recipe}-adapter"
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return f"synthdata-{re.sub(r'[^A-Za-z0-9_.-]', '_', recipe)[:200]}-{digest}-adapter"


def register_adapter(run: StageRun, adapter: Path, recipe: str, record: dict[str, Any]) -> AdapterVersion:
    """Log the files of the ``adapter`` folder as ``run``'s ``adapter/`` artifacts and register them
    as a new version of :func:`adapter_model_name`, tagged with the sha256 of the weights, the base
    and the training manifest from its ``record`` (``adapter.json``); tag ``run`` with the version.

    A version already registered from ``run`` for the same weights (a resumed or repeated stage)
    is returned instead of a second one.
    """
    import mlflow

    adapter = Path(adapter)
    tags = {
        "adapter_sha256": str(record["sha256"]),
        # a scratch-mode adapter has no base
        "base_sha256": str(record.get("base_sha256") or "none"),
        "dataset_manifest_sha256": str(record.get("dataset_manifest_sha256") or "none"),
    }
    _check_active(mlflow, run)
    run.log_artifacts(adapter, ADAPTER_ARTIFACTS)
    client = mlflow.MlflowClient()
    name = adapter_model_name(recipe)
    _ensure_model(client, name, recipe)
    same = [
        v
        for v in _versions(client, name)
        if v.run_id == run.run_id and v.tags.get("adapter_sha256") == tags["adapter_sha256"]
    ]
    if same:
        found = AdapterVersion(name, int(same[0].version))
    else:
        source = f"{client.get_run(run.run_id).info.artifact_uri.rstrip('/')}/{ADAPTER_ARTIFACTS}"
        made = client.create_model_version(name, source, run_id=run.run_id, tags=tags)
        found = AdapterVersion(name, int(made.version))
    _tag_run(run, found)
    return found


def adapter_version(recipe: str, adapter_sha256: str) -> AdapterVersion | None:
    """The newest registered version of ``recipe``'s adapter model whose weights have sha256
    ``adapter_sha256``; None if there is none, or no store (none is made to look)."""
    if not (store_root() / "mlflow.db").is_file():
        return None
    mlflow, _ = _tracking()
    from mlflow.exceptions import MlflowException

    name = adapter_model_name(recipe)
    try:
        versions = _versions(mlflow.MlflowClient(), name)
    except MlflowException:  # a store mlflow cannot read
        return None
    matching = [v for v in versions if v.tags.get("adapter_sha256") == adapter_sha256]
    return AdapterVersion(name, int(matching[0].version)) if matching else None


def link_adapter(run: StageRun, recipe: str, adapter_sha256: str) -> AdapterVersion | None:
    """Tag ``run`` (a stage that used the adapter: sample, validate) with the registered version
    of the adapter whose weights have sha256 ``adapter_sha256``; with ``adapter_model``
    ``unregistered`` when none is registered."""
    found = adapter_version(recipe, adapter_sha256)
    if found is None:
        run.set_tags({"adapter_model": UNREGISTERED})
        return None
    _tag_run(run, found)
    return found


def _tag_run(run: StageRun, version: AdapterVersion) -> None:
    run.set_tags(
        {"adapter_model": version.name, "adapter_model_version": version.version, "adapter_model_uri": version.uri}
    )


def _check_active(mlflow: Any, run: StageRun) -> None:
    """Refuse to log outside ``run``'s block: mlflow would open a new run of its own."""
    active = mlflow.active_run()
    if active is None or active.info.run_id != run.run_id:
        raise RuntimeError(f"MLflow run {run.run_id} is not the active run: log lineage inside its stage_run block")


def _ensure_model(client: Any, name: str, recipe: str) -> None:
    """Create the registered model ``name`` unless it exists (or another process just made it)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    try:
        client.create_registered_model(
            name, tags={"recipe": recipe}, description=f"Adapters fine-tuned by synthdata for recipe {recipe}"
        )
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def _versions(client: Any, name: str) -> list[Any]:
    """The versions of the registered model ``name``, newest first."""
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)
