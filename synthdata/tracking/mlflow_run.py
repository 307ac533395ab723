"""One MLflow run per stage, in a local store: ``mlruns/mlflow.db`` (sqlite) with artifacts in
``mlruns/artifacts``. Every run carries the git commit and synthdata version as tags; stages
add the manifest hash of what they produced.

Stages log through the :class:`StageRun` that :func:`stage_run` yields, never through ``mlflow``
directly: every key then passes :func:`tracking_keys`, so a class or folder name MLflow would
refuse (``cd4+``, ``v1+v2``) cannot fail a stage after it has published its output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.provenance import created_by, versions
from synthdata.settings import flatten

STORE_ENV = "SYNTHDATA_MLRUNS"
EXPERIMENT = "synthdata"

# Analytics off: nothing leaves the machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def store_root() -> Path:
    return Path(os.environ.get(STORE_ENV, "mlruns")).resolve()


def _tracking() -> tuple[Any, Path]:
    """``mlflow``, pointed at the local store (made if missing), with its loggers quietened."""
    import mlflow

    # mlflow sets up its loggers on import; quiet its schema-migration chatter afterwards.
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    root = store_root()
    root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow, root


@dataclass(frozen=True)
class StageRun:
    """The active MLflow run of one stage: what a stage logs goes through here."""

    run_id: str

    def log_metrics(self, metrics: dict[str, float | None], step: int | None = None) -> None:
        """Log ``metrics`` (keys through :func:`tracking_keys`; a None figure is left out)."""
        import mlflow

        tracked = _tracked_metrics(metrics)
        if tracked:
            mlflow.log_metrics(tracked, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        """Log ``params`` as strings (keys through :func:`tracking_keys`)."""
        import mlflow

        mlflow.log_params(_tracked(params, MAX_PARAM_VALUE))

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set ``tags`` as strings (keys through :func:`tracking_keys`)."""
        import mlflow

        mlflow.set_tags(_tracked(tags, MAX_TAG_VALUE))

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """Copy the file at ``path`` into the run's artifacts (under ``folder`` if given)."""
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_artifacts(self, path: Path, folder: str | None = None) -> None:
        """Copy every file under the folder ``path`` into the run's artifacts (under ``folder`` if given)."""
        import mlflow

        mlflow.log_artifacts(str(path), artifact_path=folder)

    def log_dict(self, value: dict[str, Any], name: str) -> None:
        """Store ``value`` as the JSON artifact ``name``."""
        import mlflow

        mlflow.log_dict(value, name)


def _experiment_id(mlflow: Any, root: Path) -> str:
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())


@contextmanager
def stage_run(
    stage: str, recipe: str, params: dict[str, Any], *, resume_run_id: str | None = None, output: Path | None = None
) -> Iterator[StageRun]:
    """An active MLflow run for ``stage`` of ``recipe``; marked FAILED if the body raises.

    With ``resume_run_id`` (a run a killed stage left behind, recorded in its checkpoint) that
    run is reopened and continued instead of starting a new one. With ``output``, the stage holds
    that folder's lock (:mod:`synthdata.locking`) for the whole run, taken before any run is
    opened: a second writer of the same output is refused and leaves no trace in MLflow.
    """
    if output is None:
        yield from _stage_run(stage, recipe, params, resume_run_id)
        return
    from synthdata.locking import FolderLock

    with FolderLock(output):
        yield from _stage_run(stage, recipe, params, resume_run_id)


def _stage_run(stage: str, recipe: str, params: dict[str, Any], resume_run_id: str | None) -> Iterator[StageRun]:
    mlflow, root = _tracking()
    # every version needed to repeat the run, as tags (synthdata.torch, synthdata.git_commit, ...)
    tags = {"stage": stage, "recipe": recipe, **{f"synthdata.{k}": v for k, v in versions().items()}}
    tags["git_commit"] = created_by()["git_commit"]
    experiment = _experiment_id(mlflow, root)
    close_dead_runs(mlflow, experiment, stage, recipe)
    if resume_run_id is not None and _run_exists(mlflow, resume_run_id):
        with mlflow.start_run(run_id=resume_run_id) as run:
            reopened = StageRun(run.info.run_id)
            reopened.set_tags({"resumed": "true", **_process_tags()})
            # a run reopened by a later pipeline run (same inputs, same outputs) now belongs to it
            mlflow.set_tag("mlflow.parentRunId", pipeline_run(mlflow, experiment, recipe))
            yield reopened
        return
    tags["mlflow.parentRunId"] = pipeline_run(mlflow, experiment, recipe)
    tags.update(_process_tags())
    tags = _tracked(tags, MAX_TAG_VALUE)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{recipe}/{stage}", tags=tags) as run:
        started = StageRun(run.info.run_id)
        started.log_params(flatten(params))
        yield started


def _process_tags() -> dict[str, str]:
    return {"synthdata.pid": str(os.getpid()), "synthdata.host": socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a killed child not yet reaped by its parent is a zombie: dead for our purpose
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def close_dead_runs(mlflow: Any, experiment: str, stage: str, recipe: str) -> list[str]:
    """Mark FAILED the runs of ``stage`` of ``recipe`` still RUNNING whose process (on this host)
    is gone: a SIGKILL or power cut leaves no chance to close a run, so the next run does it."""
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.stage = '{stage}' and tags.recipe = '{recipe}' and attributes.status = 'RUNNING'",
    )
    closed = []
    for run in runs:
        pid, host = run.data.tags.get("synthdata.pid"), run.data.tags.get("synthdata.host")
        if pid is None or host != socket.gethostname() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        client.set_tag(
            run.info.run_id, "synthdata.ended", f"process {pid} gone while running; closed by process {os.getpid()}"
        )
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    return closed


def pipeline_run(mlflow: Any, experiment: str, recipe: str) -> str:
    """The open pipeline run of ``recipe`` (every stage run is nested under it), made if none is.

    A pipeline run stays RUNNING from its first stage until the report stage closes it, so the
    stages of one ``dvc repro`` — separate processes — share one parent, and a run a kill cut
    short is continued by the next ``dvc repro``.
    """
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.pipeline = 'true' and tags.recipe = '{recipe}' and attributes.status = 'RUNNING'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if runs:
        return runs[0].info.run_id
    tags = {
        "pipeline": "true",
        "recipe": recipe,
        "mlflow.runName": f"{recipe}/pipeline",
        "git_commit": created_by()["git_commit"],
    }
    return client.create_run(experiment, tags=tags).info.run_id


def finish_pipeline(recipe: str, metrics: dict[str, float]) -> str | None:
    """Log ``metrics`` on the open pipeline run of ``recipe`` and mark it FINISHED; its id."""
    mlflow, root = _tracking()
    client = mlflow.MlflowClient()
    run_id = pipeline_run(mlflow, _experiment_id(mlflow, root), recipe)
    for key, value in _tracked_metrics(metrics).items():
        client.log_metric(run_id, key, value)
    client.set_terminated(run_id, "FINISHED")
    return run_id


MAX_KEY = 250
"""MLflow's longest metric, parameter and tag key."""
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_REFUSED = re.compile(r"[^A-Za-z0-9_\-. /]")
"""What a key may not hold: MLflow allows alphanumerics, ``_ - . space /`` (and ``:`` off Windows,
left out so that a store moves between systems)."""


def tracking_keys(names: Iterable[str]) -> dict[str, str]:
    """Each of ``names`` -> a key MLflow accepts for a metric, parameter or tag, the same every time.

    A valid name is kept as it is; otherwise each refused character becomes ``_``, ``/`` too where
    the name would not survive path normalisation (``a//b``, ``../x``), leading dots become ``_``,
    and the key is cut to MLflow's length. Two names that would meet on one key (``cd4+`` and
    ``cd4_``) are told apart by a digest of the original name on each changed one.
    """
    names = list(names)
    keys = {name: _key(name) for name in names}
    taken: dict[str, int] = {}
    for key in keys.values():
        taken[key] = taken.get(key, 0) + 1
    for name, key in keys.items():
        if key != name and taken[key] > 1:
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            keys[name] = f"{key[: MAX_KEY - 9]}-{digest}"
    return keys


def _key(name: str) -> str:
    key = _REFUSED.sub("_", name)
    if key.startswith("/") or posixpath.normpath(key) != key:
        key = key.replace("/", "_")
    key = re.sub(r"^\.+", lambda dots: "_" * len(dots.group()), key) or "_"
    return key[:MAX_KEY]


def _tracked(values: dict[str, Any], limit: int) -> dict[str, str]:
    """``values`` as strings under valid keys, each cut to MLflow's ``limit`` characters."""
    keys = tracking_keys(values)
    return {keys[name]: str(value)[:limit] for name, value in values.items()}


def _tracked_metrics(metrics: dict[str, float | None]) -> dict[str, float]:
    """``metrics`` under valid keys; a figure that could not be computed (None) is left out."""
    keys = tracking_keys(metrics)
    return {keys[name]: float(value) for name, value in metrics.items() if value is not None}


def find_run(stage: str, recipe: str, **tags: str) -> str | None:
    """The newest run of ``stage`` for ``recipe`` carrying every tag in ``tags``, if any."""
    if not (store_root() / "mlflow.db").is_file():
        return None
    mlflow, _ = _tracking()
    clauses = [f"tags.stage = '{stage}'", f"tags.recipe = '{recipe}'"]
    clauses += [f"tags.{key} = '{value}'" for key, value in tags.items()]
    try:
        runs = mlflow.search_runs(
            experiment_names=[EXPERIMENT],
            filter_string=" and ".join(clauses),
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
    except Exception:  # no experiment yet, or a store mlflow cannot read
        return None
    return runs[0].info.run_id if runs else None


def _run_exists(mlflow: Any, run_id: str) -> bool:
    try:
        mlflow.get_run(run_id)
    except Exception:  # mlflow raises MlflowException (and others by store) for an unknown id
        return False
    return True
