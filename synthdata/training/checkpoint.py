"""Exact training checkpoints in safetensors + JSON (no pickle anywhere).

A checkpoint holds the trainable parameters, their EMA shadow, the AdamW moments and the step;
every random draw of the loop is a pure function of (seed, step), so restoring these is enough
for a resumed run to match an uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import fresh_staging, publish_folder
from synthdata.models.weights import read_tensors, write_tensors

LATEST = "latest"


def save_checkpoint(
    folder: Path,
    *,
    step: int,
    params: dict[str, torch.Tensor],
    ema: Any,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> Path:
    """Write ``folder/latest`` atomically (staging folder, then rename)."""
    target = Path(folder) / LATEST
    staging = fresh_staging(target)
    tensors = {f"param.{name}": value for name, value in params.items()}
    tensors |= {f"ema.{i}": shadow for i, shadow in enumerate(ema.shadow_params)}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    write_tensors(tensors, staging / "state.safetensors")
    ema_scalars = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    meta = {"step": step, "ema": ema_scalars, "param_groups": state["param_groups"], "record": record}
    (staging / "checkpoint.json").write_text(json.dumps(meta, indent=2) + "\n")
    return publish_folder(staging, target)


def load_checkpoint(
    folder: Path, *, params: dict[str, torch.nn.Parameter], ema: Any, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Restore into live objects; returns the checkpoint's JSON, or None when there is none."""
    target = Path(folder) / LATEST
    if not (target / "checkpoint.json").is_file():
        return None
    meta = json.loads((target / "checkpoint.json").read_text())
    tensors = read_tensors(target / "state.safetensors")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[f"param.{name}"])
    shadows = [tensors[f"ema.{i}"] for i in range(len(ema.shadow_params))]
    ema.load_state_dict({**meta["ema"], "shadow_params": shadows})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, slot = key.split(".", 2)
            state.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


def discard_if_stale(folder: Path, fingerprint: str) -> bool:
    """Remove checkpoints made for other inputs or settings; True if something was removed.

    A workdir outlives its run (that is what makes resume possible), so a checkpoint must only
    be resumed by the same job: same data, same base, same settings.
    """
    meta = Path(folder) / LATEST / "checkpoint.json"
    if meta.is_file() and json.loads(meta.read_text())["record"].get("fingerprint") != fingerprint:
        shutil.rmtree(folder)
        return True
    return False


def recorded_run_id(folder: Path) -> str | None:
    """The MLflow run a killed training left in its checkpoint, to be resumed."""
    meta = Path(folder) / LATEST / "checkpoint.json"
    return json.loads(meta.read_text())["record"].get("mlflow_run_id") if meta.is_file() else None
