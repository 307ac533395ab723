"""The dvc.yaml runner behind `synthdata benchmark`: order, skipping, reruns on change, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthdata.errors import SynthdataError
from synthdata.pipeline import run_stages, stages

PIPELINE = """
stages:
  make:
    foreach: ${recipes}
    do:
      cmd: python -c "import pathlib, yaml; n = yaml.safe_load(open('recipes/${item}.yaml'))['make']['n']; pathlib.Path('out/${item}').mkdir(parents=True, exist_ok=True); pathlib.Path('out/${item}/a.txt').write_text(str(n)); open('log', 'a').write('make\\\\n')"
      params:
        - recipes/${item}.yaml:
            - make
      outs:
        - out/${item}/a.txt
  use:
    foreach: ${recipes}
    do:
      cmd: python -c "import pathlib; pathlib.Path('out/${item}/b.txt').write_text(pathlib.Path('out/${item}/a.txt').read_text() * 2); open('log', 'a').write('use\\\\n')"
      deps:
        - out/${item}/a.txt
      params:
        - recipes/${item}.yaml:
            - use
      outs:
        - out/${item}/b.txt
"""


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text("make: {n: 3}\nuse: {k: 1}\n")
    return tmp_path


def _log(project: Path) -> list[str]:
    return (project / "log").read_text().split() if (project / "log").exists() else []


def test_stages_come_in_order_with_the_recipe_substituted(project):
    found = stages("r", project / "dvc.yaml")
    assert [s.name for s in found] == ["make", "use"]
    assert found[1].deps == ("out/r/a.txt",) and found[1].outs == ("out/r/b.txt",)
    assert found[0].params == (("recipes/r.yaml", "make"),)


def test_a_rerun_skips_and_a_change_reruns_the_stage_and_what_follows(project):
    run_stages("r", project, log=lambda _: None)
    assert _log(project) == ["make", "use"] and (project / "out/r/b.txt").read_text() == "33"
    run_stages("r", project, log=lambda _: None)
    assert _log(project) == ["make", "use"]  # nothing changed: nothing ran
    (project / "recipes" / "r.yaml").write_text("make: {n: 3}\nuse: {k: 2}\n")
    run_stages("r", project, log=lambda _: None)
    assert _log(project) == ["make", "use", "use"]  # only the stage whose section changed
    (project / "recipes" / "r.yaml").write_text("make: {n: 4}\nuse: {k: 2}\n")
    run_stages("r", project, log=lambda _: None)
    assert _log(project)[-2:] == ["make", "use"] and (project / "out/r/b.txt").read_text() == "44"  # and downstream


def test_outputs_made_elsewhere_are_taken_as_they_are(project):
    (project / "out" / "r").mkdir(parents=True)
    (project / "out" / "r" / "a.txt").write_text("7")
    run_stages("r", project, log=lambda _: None)
    assert _log(project) == ["use"] and (project / "out/r/b.txt").read_text() == "77"


def test_a_failing_stage_and_an_unknown_stage_are_one_clear_error(project):
    (project / "recipes" / "r.yaml").write_text("use: {k: 1}\n")  # no 'make' section: the command fails
    with pytest.raises(SynthdataError, match="stage make@r failed"):
        run_stages("r", project, log=lambda _: None)
    with pytest.raises(SynthdataError, match="unknown pipeline stage 'train'"):
        run_stages("r", project, only=["train"], log=lambda _: None)


def test_benchmark_refuses_an_ablation_for_a_recipe_it_does_not_run(tmp_path):
    from synthdata.benchmark import run_benchmark

    with pytest.raises(SynthdataError, match="ablation asked for recipes not benchmarked: gtsrb"):
        run_benchmark(tmp_path, ["pbc"], ablation=["pbc", "gtsrb"], anchor=False)
    with pytest.raises(SynthdataError, match="unknown preset 'tpu'"):
        run_benchmark(tmp_path, ["pbc"], preset="tpu")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
