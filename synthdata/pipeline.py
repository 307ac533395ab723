"""The pipeline of ``dvc.yaml``, for recipes that ``params.yaml`` does not list.

``dvc repro`` runs the recipes listed in ``params.yaml``. A benchmark over every domain needs the
same stages for other recipes without editing that file, so this module reads the stage
templates from ``dvc.yaml`` (their ``foreach ... do`` bodies), substitutes the recipe name and
runs each command as DVC would. The commands stay in one place: ``dvc.yaml``.

A stage whose declared outputs all exist is skipped — every stage publishes its outputs by a
rename, so an output that exists is complete, and a killed benchmark picks up where it stopped —
unless what determines it changed: each run records a fingerprint (the command, the recipe
sections the stage declares as params, the code it depends on, and the fingerprints of the
stages whose outputs it reads) in ``<root>/.synthdata-stages.json``; a different fingerprint
reruns the stage, as ``dvc repro`` would. Outputs made elsewhere (by ``dvc repro``) with no
fingerprint recorded are taken as they are.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from synthdata.atomic import write_text
from synthdata.errors import SynthdataError
from synthdata.hashing import file_sha256, sha256_bytes
from synthdata.paths import recipe_name

ITEM = "${item}"


FINGERPRINTS = ".synthdata-stages.json"


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    outs: tuple[str, ...]
    """Outputs, metrics and plots the stage declares, relative to the repository root."""
    deps: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    """(params file, top-level key) pairs the stage declares."""

    def done(self, root: Path) -> bool:
        return bool(self.outs) and all((root / out).exists() for out in self.outs)


def _paths(entries: list | None) -> list[str]:
    out = []
    for entry in entries or []:
        out.extend(entry if isinstance(entry, dict) else [entry])
    return [str(path) for path in out]


def stages(recipe: str, pipeline: Path = Path("dvc.yaml")) -> list[Stage]:
    """The stages of ``pipeline`` for ``recipe``, in file order (which is the data-flow order).
    ``recipe`` must be a recipe name: it is pasted into command lines and output paths."""
    recipe_name(recipe, pipeline)
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
        params = [
            (file, key)
            for entry in template.get("params") or []
            if isinstance(entry, dict)
            for file, keys in entry.items()
            for key in keys
        ]
        out.append(
            Stage(
                name,
                cmd.replace(ITEM, recipe),
                tuple(o.replace(ITEM, recipe) for o in outs),
                tuple(str(d).replace(ITEM, recipe) for d in template.get("deps") or []),
                tuple((f.replace(ITEM, recipe), k) for f, k in params),
            )
        )
    return out


def _code_hash(path: Path) -> str:
    files = sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
    return sha256_bytes(
        b"".join(
            p.relative_to(path.parent).as_posix().encode() + file_sha256(p).encode() for p in files if p.is_file()
        )
    )


def fingerprint(stage: Stage, root: Path, upstream: dict[str, str]) -> str:
    """What determines ``stage``'s outputs: command, params sections, code, upstream stages."""
    parts: dict[str, object] = {"cmd": stage.cmd}
    for file, key in stage.params:
        try:
            parts[f"{file}:{key}"] = (yaml.safe_load((root / file).read_text()) or {}).get(key)
        except (OSError, yaml.YAMLError):
            parts[f"{file}:{key}"] = None
    for dep in stage.deps:
        if dep in upstream:  # an output of an earlier stage: its fingerprint stands for it
            parts[dep] = upstream[dep]
        elif (root / dep).exists() and dep.startswith("synthdata"):
            parts[dep] = _code_hash(root / dep)
    return sha256_bytes(json.dumps(parts, sort_keys=True, default=str).encode())


def run_stages(
    recipe: str, root: Path = Path("."), *, only: list[str] | None = None, pipeline: Path | None = None, log=print
) -> dict[str, float]:
    """Run ``recipe``'s stages (or ``only`` these, in pipeline order) in the folder ``root``, the
    stage templates read from ``pipeline`` (default ``root/dvc.yaml``); seconds per stage run."""
    timings: dict[str, float] = {}
    known = stages(recipe, pipeline or root / "dvc.yaml")
    unknown = sorted(set(only or []) - {s.name for s in known})
    if unknown:
        raise SynthdataError(f"unknown pipeline stage '{unknown[0]}'; dvc.yaml has {', '.join(s.name for s in known)}")
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    record_path = root / FINGERPRINTS
    recorded = json.loads(record_path.read_text()) if record_path.is_file() else {}
    upstream: dict[str, str] = {}
    for stage in known:
        key = f"{stage.name}@{recipe}"
        current = fingerprint(stage, root, upstream)
        upstream.update({out: current for out in stage.outs})
        if only is not None and stage.name not in only:
            continue
        if stage.done(root) and recorded.get(key, current) == current:
            log(f"{key}: up to date, skipped")
            recorded[key] = current
            continue
        log(f"{key}: {stage.cmd}")
        started = time.perf_counter()
        completed = subprocess.run(shlex.split(stage.cmd), cwd=root, env=env)
        if completed.returncode:
            raise SynthdataError(f"stage {stage.name}@{recipe} failed (exit {completed.returncode}): {stage.cmd}")
        timings[stage.name] = time.perf_counter() - started
        recorded[key] = current
        write_text(record_path, json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    write_text(record_path, json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return timings
