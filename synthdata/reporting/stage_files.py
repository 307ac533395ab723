"""What a stage writes for DVC beside its outputs.

- a **headline** metrics file: the few numbers ``dvc metrics show`` and ``dvc exp show`` compare
  (DVC prints every metrics file of a pipeline as one table whose columns are the union of their
  keys, so each file keeps to a handful of short keys);
- every figure in a **figures** JSON (a DVC ``outs``, read by the report and the benchmark);
- **data plots**: CSV tables in a plots folder, one file per plot, that ``dvc plots diff``
  draws with a template and overlays across commits and experiments.

Each file is written whole under a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.atomic import write_text

MAX_HEADLINE = 25
"""The most numbers a headline file holds."""


def headline_size(headline: Mapping[str, Any]) -> int:
    """How many numbers ``headline`` holds (nested keys counted as DVC flattens them)."""
    return sum(headline_size(v) if isinstance(v, Mapping) else 1 for v in headline.values())


def table_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` (dicts with the same keys) as CSV text, floats at full precision."""
    if not rows:
        raise ValueError("a plot table needs at least one row")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class StageFiles:
    """Where a stage writes its headline (``metrics``), its every figure (``figures``) and its
    data plots (``plots``, a folder); each left out when None."""

    metrics: Path | None = None
    figures: Path | None = None
    plots: Path | None = None

    def write(
        self,
        headline: Mapping[str, Any],
        figures: str | None = None,
        tables: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> list[Path]:
        """Write what was asked for: the figures' text, each table as ``plots/<name>``, the
        headline last (it is what DVC compares); the paths written."""
        if headline_size(headline) > MAX_HEADLINE:
            raise ValueError(f"a headline holds at most {MAX_HEADLINE} numbers, not {headline_size(headline)}")
        paths: list[Path] = []
        if self.figures is not None and figures is not None:
            paths.append(write_text(self.figures, figures))
        if self.plots is not None:
            for name, rows in (tables or {}).items():
                paths.append(write_text(self.plots / name, table_text(rows)))
        if self.metrics is not None:
            paths.append(write_text(self.metrics, json.dumps(headline, indent=2) + "\n"))
        return paths
