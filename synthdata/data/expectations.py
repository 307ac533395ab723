"""The Great Expectations suite every manifest must pass, and the file check beside it.

The suite checks the table: schema, declared label set and label/name pairs, unique ids,
paths and sha256 (so no image is in two splits), declared sizes and channels. The file check
confirms each row's file exists inside the dataset folder and has the row's sha256.
A failure is one :class:`DataError` line naming the failing expectation and rows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pandas as pd

from synthdata.data.card import DatasetCard
from synthdata.data.manifest import (
    COLUMNS,
    DERIVED_SOURCE_TYPE,
    DIGITAL_SOURCE_TYPE,
    KEPT_DECISIONS,
    PROVENANCE_COLUMNS,
    REVIEW_COLUMNS,
    SPLITS,
    SYNTHETIC_SOURCE,
    GenerationMode,
    check_files,
    first_rows,
    source_type,
)
from synthdata.errors import DataError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class SuiteFailure:
    expectation: str
    column: str
    rows: list[str]
    """Ids (with their split) of the failing rows; empty for table-level expectations."""
    detail: str = ""

    def describe(self) -> str:
        where = f" rows {first_rows(self.rows)}" if self.rows else ""
        return f"{self.expectation}({self.column}) failed{where}{self.detail}"


@dataclass(frozen=True)
class SuiteReport:
    evaluated: int
    failures: list[SuiteFailure]

    @property
    def success(self) -> bool:
        return not self.failures


def manifest_expectations(card: DatasetCard) -> list:
    """The expectations for a dataset declaring ``card``'s classes, size and channels; a
    synthetic set (card source ``synthdata``) must also carry complete provenance columns."""
    import great_expectations.expectations as gxe

    synthetic = card.source == SYNTHETIC_SOURCE
    reviewed = synthetic and card.review is not None
    columns = (
        list(COLUMNS) + (list(PROVENANCE_COLUMNS) if synthetic else []) + (list(REVIEW_COLUMNS) if reviewed else [])
    )
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ]
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in COLUMNS if c != "group"]
    expectations += [gxe.ExpectColumnValuesToBeUnique(column=c) for c in ("id", "relpath", "sha256")]
    expectations += [
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeInSet(column="label_name", value_set=list(card.classes)),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(len(card.classes)))),
        gxe.ExpectColumnPairValuesToBeInSet(
            column_A="label", column_B="label_name", value_pairs_set=[(i, n) for i, n in enumerate(card.classes)]
        ),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=[card.width]),
        gxe.ExpectColumnValuesToBeInSet(column="height", value_set=[card.height]),
        gxe.ExpectColumnValuesToBeInSet(column="channels", value_set=[card.channels]),
    ]
    if reviewed:  # a reviewed set holds no rejected image
        expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in REVIEW_COLUMNS]
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="review_decision", value_set=list(KEPT_DECISIONS)))
    if synthetic:
        expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in PROVENANCE_COLUMNS]
        expectations += [
            gxe.ExpectColumnValuesToBeInSet(
                column="digital_source_type", value_set=[DIGITAL_SOURCE_TYPE, DERIVED_SOURCE_TYPE]
            ),
            gxe.ExpectColumnPairValuesToBeInSet(
                column_A="mode",
                column_B="digital_source_type",
                value_pairs_set=[(mode, source_type(mode)) for mode in get_args(GenerationMode)],
            ),
            gxe.ExpectColumnValuesToBeBetween(column="strength", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="interpolation_weight", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train"]),
            gxe.ExpectColumnValuesToBeInSet(column="source", value_set=[SYNTHETIC_SOURCE]),
            gxe.ExpectColumnValuesToBeBetween(column="seed", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="steps", min_value=1),
        ]
        expectations += [
            gxe.ExpectColumnValuesToMatchRegex(column=c, regex=r"^[0-9a-f]{64}$")
            for c in ("adapter_sha256", "source_manifest_sha256")
        ]
        # Empty only for a model trained from scratch (base_id none:scratch): it has no base.
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(column="base_sha256", regex=r"^(?:[0-9a-f]{64})?$"))
    return expectations


def run_suite(frame: pd.DataFrame, card: DatasetCard) -> SuiteReport:
    """Validate ``frame`` with Great Expectations; returns every failing expectation and its rows."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("manifests").add_dataframe_asset("manifest")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    suite = context.suites.add(gx.ExpectationSuite(name="manifest"))
    for expectation in manifest_expectations(card):
        suite.add_expectation(expectation)
    # Failing rows are named by id and split (a duplicated id may sit in two splits).
    index_columns = [c for c in ("id", "split") if c in frame.columns]
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns}
    )
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        kwargs = config.kwargs
        column = (
            kwargs.get("column")
            or "+".join(str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs)
            or "table"
        )
        rows = [
            f"{entry.get('id')} ({entry.get('split', '?')})" if isinstance(entry, dict) else str(entry)
            for entry in (item.result.get("unexpected_index_list") or [])
        ]
        detail = ""
        if not rows:
            observed = item.result.get("observed_value")
            detail = f": observed {observed}" if observed is not None else ""
            if item.exception_info and item.exception_info.get("raised_exception"):
                detail = f": {item.exception_info.get('exception_message')}"
        failures.append(SuiteFailure(config.type, column, rows, detail))
    return SuiteReport(len(result.results), failures)


def validate_dataset(folder: Path | str, frame: pd.DataFrame, card: DatasetCard, *, files: bool = True) -> SuiteReport:
    """Run the suite and (unless ``files`` is false: already checked by
    :func:`~synthdata.data.manifest.verify_dataset`) the file check; raise one :class:`DataError`
    line if either fails."""
    folder = Path(folder)
    report = run_suite(frame, card)
    problems = [f.describe() for f in report.failures]
    bad_files = check_files(frame, folder) if files and "relpath" in frame and "sha256" in frame else []
    if bad_files:
        problems.append(f"file check failed for rows {first_rows(bad_files)}")
    if problems:
        raise DataError(f"{folder / 'manifest.parquet'}: " + "; ".join(problems))
    return report
