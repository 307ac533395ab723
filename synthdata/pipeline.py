"""The pipeline of ``dvc.yaml``, for recipes that ``params.yaml`` does not list.

``dvc repro`` runs the recipes listed in ``params.yaml``. A benchmark over every domain needs the
same stages for other recipes without editing that file, so this module reads the stage
templates from ``dvc.yaml`` (their ``foreach ... do`` bodies), substitutes the recipe name and
runs each command as DVC would. The commands stay in one place: ``dvc.yaml``.

A stage whose declared outputs all exist is skipped: every stage publishes its outputs by a
rename, so an output that exists is complete, and a killed benchmark picks up where it stopped.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from synthdata.errors import SynthdataError

ITEM = "${item}"


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    outs: tuple[str, ...]
    """Outputs, metrics and plots the stage declares, relative to the repository root."""

    def done(self, root: Path) -> bool:
        return bool(self.outs) and all((root / out).exists() for out in self.outs)


def _paths(entries: list | None) -> list[str]:
    out = []
    for entry in entries or []:
        out.extend(entry if isinstance(entry, dict) else [entry])
    return [str(path) for path in out]


def stages(recipe: str, pipeline: Path = Path("dvc.yaml")) -> list[Stage]:
    """The stages of ``pipeline`` for ``recipe``, in file order (which is the data-flow order)."""
    path = pipeline
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SynthdataError(f"cannot read the pipeline {path}: {exc}") from None
    out = []
    for name, body in (spec or {}).get("stages", {}).items():
        template = body.get("do", body)
        cmd = " ".join(str(template["cmd"]).split())
        outs = [*_paths(template.get("outs")), *_paths(template.get("metrics")), *_paths(template.get("plots"))]
        out.append(Stage(name, cmd.replace(ITEM, recipe), tuple(o.replace(ITEM, recipe) for o in outs)))
    return out


def run_stages(recipe: str, root: Path = Path("."), *, only: list[str] | None = None, pipeline: Path | None = None,
               log=print) -> dict[str, float]:  # fmt: skip
    """Run ``recipe``'s stages (or ``only`` these, in pipeline order) in the folder ``root``, the
    stage templates read from ``pipeline`` (default ``root/dvc.yaml``); seconds per stage run."""
    timings: dict[str, float] = {}
    known = stages(recipe, pipeline or root / "dvc.yaml")
    unknown = sorted(set(only or []) - {s.name for s in known})
    if unknown:
        raise SynthdataError(f"unknown pipeline stage '{unknown[0]}'; dvc.yaml has {', '.join(s.name for s in known)}")
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    for stage in known:
        if only is not None and stage.name not in only:
            continue
        if stage.done(root):
            log(f"{stage.name}@{recipe}: outputs exist, skipped")
            continue
        log(f"{stage.name}@{recipe}: {stage.cmd}")
        started = time.perf_counter()
        completed = subprocess.run(shlex.split(stage.cmd), cwd=root, env=env)
        if completed.returncode:
            raise SynthdataError(f"stage {stage.name}@{recipe} failed (exit {completed.returncode}): {stage.cmd}")
        timings[stage.name] = time.perf_counter() - started
    return timings
