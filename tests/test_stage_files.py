"""What the stages write for DVC: headlines small enough to compare in a terminal, every figure in
its own file, data plots whose templates and fields match what dvc.yaml declares."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from synthdata.reporting.stage_files import MAX_HEADLINE, StageFiles, headline_size, table_text

BUILT_IN_TEMPLATES = {"linear", "simple", "scatter", "smooth", "confusion", "confusion_normalized", "bar_horizontal"}


def test_stage_files_writes_the_headline_the_figures_and_each_table(tmp_path):
    files = StageFiles(tmp_path / "m" / "s.json", tmp_path / "m" / "s-figures.json", tmp_path / "m" / "plots")
    rows = [{"class": "a", "fill": 1.0, "low": None}, {"class": "b,c", "fill": 0.25, "low": 0.1}]
    paths = files.write({"accepted": 3, "realism": {"FD": 1.5}}, '{"every": "figure"}\n', {"s-fill.csv": rows})
    assert [p.name for p in paths] == ["s-figures.json", "s-fill.csv", "s.json"]
    assert json.loads((tmp_path / "m" / "s.json").read_text()) == {"accepted": 3, "realism": {"FD": 1.5}}
    assert (tmp_path / "m" / "s-figures.json").read_text() == '{"every": "figure"}\n'
    with open(tmp_path / "m" / "plots" / "s-fill.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == [
            {"class": "a", "fill": "1.0", "low": ""},
            {"class": "b,c", "fill": "0.25", "low": "0.1"},
        ]
    assert not list(tmp_path.rglob("*.part"))


def test_a_headline_over_the_cap_is_refused_before_anything_is_written(tmp_path):
    files = StageFiles(tmp_path / "s.json", tmp_path / "f.json")
    too_many = {f"arm{i}": {"ba": 0.5, "rare": 0.5} for i in range(13)}
    assert headline_size(too_many) == 26 > MAX_HEADLINE
    with pytest.raises(ValueError, match="at most 25 numbers, not 26"):
        files.write(too_many, "{}")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="at least one row"):
        table_text([])


def _pipeline() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _declared(kind: str) -> dict[str, dict]:
    """Each path dvc.yaml declares under ``kind`` (metrics, plots) for the default recipe -> its settings."""
    declared = {}
    for stage in _pipeline().values():
        for entry in stage["do"].get(kind, []):
            path, settings = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            declared[path.replace("${item}", "pbc")] = settings or {}
    return declared


def test_every_data_plot_names_a_template_and_fields_its_table_has():
    plots = {p: s for p, s in _declared("plots").items() if p.endswith(".csv")}
    assert {Path(p).name for p in plots} == {
        "finetune-loss.csv",
        "validate-fill.csv",
        "utility-arms.csv",
        "utility-recall.csv",
        "utility-curves.csv",
    }
    for path, settings in plots.items():
        template = settings["template"]
        if template not in BUILT_IN_TEMPLATES:
            text = (REPO / ".dvc" / "plots" / f"{template}.json").read_text()
            spec = json.loads(text)  # valid JSON: DVC reads it as it is
            assert spec["data"] == {"values": "<DVC_METRIC_DATA>"} and '"field": "rev"' in text, template
        with open(REPO / path, newline="") as handle:  # the committed tables of the default recipe
            header = next(csv.reader(handle))
        assert {settings["x"], settings["y"]} <= set(header), (path, header)


def test_the_default_recipe_headlines_fit_a_terminal():
    metrics = _declared("metrics")
    assert set(metrics) == {f"metrics/pbc/{s}.json" for s in ("data", "finetune", "validate", "utility")}
    for path in metrics:
        assert headline_size(json.loads((REPO / path).read_text())) <= MAX_HEADLINE, path
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    shown = subprocess.run(["dvc", "metrics", "show"], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 + len(metrics) and max(map(len, lines)) <= 200, shown.stdout


def test_plots_outside_a_dvc_repository_or_over_a_file_is_one_error_line(tmp_path, monkeypatch, capsys):
    from test_bad_input import run_cli

    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["plots"], monkeypatch, capsys)
    assert code == 1 and not out
    assert err.startswith("error: dvc plots diff failed:") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "dvc_plots").exists()
    (tmp_path / "page").write_text("mine")
    code, _, err = run_cli(["plots", "--out", "page"], monkeypatch, capsys)
    assert code == 1 and "--out page exists and is not a folder" in err
    assert (tmp_path / "page").read_text() == "mine"
