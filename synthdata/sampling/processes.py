"""A sampling run spread over ``accelerate launch``'s processes.

Each process makes a disjoint share of the batches; what only one process may do (take the
output's lock, open the run's record) is done by the main process, and its outcome, a failure
included, reaches every process, so that none waits for the others forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from synthdata.errors import SynthdataError

T = TypeVar("T")


def process_state() -> Any:
    """accelerate's view of this process: rank and world size under ``accelerate launch``."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def share(state: Any, values: list[Any]) -> list[Any]:
    """The main process's ``values`` on every process."""
    if state.num_processes == 1:
        return values
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list(values)


def on_main_process(state: Any, setup: Callable[[], tuple[T, Any]]) -> tuple[T | None, Any]:
    """Run ``setup`` on the main process only. It returns what stays there (None on the other
    processes) and a value for every process; a :class:`SynthdataError` it raises is raised on
    every process (the original on the main one)."""
    problem, error, kept, shared = None, None, None, None
    if state.is_main_process:
        try:
            kept, shared = setup()
        except SynthdataError as exc:
            problem, error = str(exc), exc
    problem, shared = share(state, [problem, shared])
    if problem:
        raise error or SynthdataError(problem)
    return kept, shared


def to_device(backbone: Any, device: Any) -> None:
    """Move the backbone's networks (and prompt embeddings) to ``device``."""
    for name in ("unet", "vae", "prompt_embeddings"):
        part = getattr(backbone, name, None)
        if part is not None:
            setattr(backbone, name, part.to(device))
