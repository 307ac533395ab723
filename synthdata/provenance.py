"""Who made an artifact: synthdata's version and the git commit of the working tree."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from synthdata import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's hash, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def created_by() -> dict[str, str]:
    return {"synthdata": __version__, "git_commit": git_commit()}
