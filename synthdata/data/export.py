"""A dataset folder as an image folder plus a label table: the layout the ``csv`` source reads.

What a team hands to another tool (or to a colleague who starts from a CSV): ``images/<id>.png``
in one flat folder, so the table is the only place a label lives, and ``labels.csv`` with one
row per image: ``image,label,split,group`` (``group`` is the track, patient or lesion the source
gave, empty when it gave none). The folder is built under a temporary name and renamed whole.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from synthdata.atomic import build_folder, write_text
from synthdata.data.manifest import verify_dataset
from synthdata.progress import progress_bar

TABLE = "labels.csv"
COLUMNS = ("image", "label", "split", "group")


def export_table(dataset: Path | str, out: Path | str) -> list[Path]:
    """Write ``dataset`` to ``out`` as ``images/`` + ``labels.csv``, once its files, manifest and
    card are checked to agree; the paths written."""
    dataset, out = Path(dataset), Path(out)
    frame = verify_dataset(dataset).frame.sort_values("id")

    def build(staging: Path) -> list[Path]:
        (staging / "images").mkdir(parents=True)
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(COLUMNS)
        with progress_bar(f"export {dataset.name}", total=len(frame)) as bar:
            for row in frame.itertuples():
                name = f"images/{row.id}.png"
                (staging / name).write_bytes((dataset / row.relpath).read_bytes())
                writer.writerow((name, row.label_name, row.split, row.group))
                bar.advance()
        return [staging / "images", write_text(staging / TABLE, table.getvalue())]

    return build_folder(out, build)
