"""Bad input, continued: names that tracking must accept, data whose integrity is checked against
what is read (not what the card says), figures that cannot be computed, and Ctrl-C while an
adapter is being built.

Each refusal goes through the command line: one ``error:`` line naming the file and the problem,
exit code 1, nothing under the output's name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import make_image_tree, make_sampling_setup, stage_runs
from test_bad_input import run_cli

from synthdata.data.card import read_card
from synthdata.data.manifest import manifest_hash, read_manifest

ODD_CLASSES = {"cd4+": 24, "cd8 (rare)": 10, "b": 8}


def _one_error(code: int, err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny base, dataset ``d`` (classes a, b, c), recipe and adapter."""
    return make_sampling_setup(tmp_path_factory.mktemp("integrity"))


# --- Class and folder names become tracking keys --------------------------------------------


def test_tracking_keys_are_valid_unique_and_bounded():
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name, _validate_tag_name

    from synthdata.tracking.mlflow_run import tracking_keys

    names = [
        "cd4+",
        "cd4_",
        "cd8 (rare)",
        "a/b",
        "../up",
        "/abs",
        "a//b",
        ".",
        "",
        "x" * 300,
        "x" * 300 + "+",
        "ok.name-1/2 3",
        "naïve",
        "t\tab",
        "semi;colon",
    ]
    keys = tracking_keys(names)
    assert list(keys) == names and len(set(keys.values())) == len(names)
    for key in keys.values():
        _validate_metric_name(key), _validate_param_name(key), _validate_tag_name(key)
        assert 0 < len(key) <= 250
    assert keys["ok.name-1/2 3"] == "ok.name-1/2 3"  # a valid name is kept as it is
    assert tracking_keys(names) == keys  # the same names, the same keys


def _odd_dataset(root: Path) -> Path:
    from synthdata.config.recipe import SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source

    make_image_tree(root / "tree", ODD_CLASSES)
    ingest(
        get_source("imagefolder", path=str(root / "tree"), dataset="odd"),
        root / "odd",
        split=SplitSettings(val_fraction=0.25, test_fraction=0.2),
    )
    return root / "odd"


def test_class_names_with_plus_and_parentheses_go_through_longtail(tmp_path, monkeypatch, capsys):
    dataset = _odd_dataset(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: odd\ndomain: medical\ndata: {{source: imagefolder, path: {tmp_path / 'tree'}}}\nlongtail: {{imbalance: 2}}\n"
    )
    out = tmp_path / "odd-lt"
    code, _, err = run_cli(
        ["data", "longtail", "--recipe", str(recipe), "--parent", str(dataset), "--out", str(out)], monkeypatch, capsys
    )
    assert code == 0, err
    runs = stage_runs()
    assert list(runs["status"]) == ["FINISHED"]
    logged = [c for c in runs.columns if c.startswith("metrics.train_")]
    assert len(logged) == 3 and "metrics.train_b" in logged


def test_class_names_with_plus_and_parentheses_go_through_finetune_and_sample(tmp_path, setup, monkeypatch, capsys):
    dataset = _odd_dataset(tmp_path)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text((setup / "tiny.yaml").read_text().replace("name: tiny", "name: odd"))
    adapter, out = tmp_path / "adapter", tmp_path / "synthetic"
    code, _, err = run_cli(
        ["finetune", "--recipe", str(recipe), "--dataset", str(dataset), "--out", str(adapter)], monkeypatch, capsys
    )
    assert code == 0, err
    argv = ["sample", "--recipe", str(recipe), "--dataset", str(dataset), "--adapter", str(adapter), "--out", str(out)]
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert code == 0, err
    runs = stage_runs().set_index("tags.stage")
    assert (runs["status"] == "FINISHED").all()
    assert (
        len([c for c in runs.columns if c.startswith("metrics.synthetic.") and pd.notna(runs.loc["sample", c])]) == 3
    )


def test_data_validate_of_a_folder_with_plus_in_its_name(setup, tmp_path, monkeypatch, capsys):
    folder = shutil.copytree(setup / "d", tmp_path / "ds" / "v1+v2")
    code, out, err = run_cli(["data", "validate", str(folder)], monkeypatch, capsys)
    assert code == 0, err
    assert "v1+v2:" in out and list(stage_runs()["status"]) == ["FINISHED"]


# --- Integrity: what is read is what was recorded -------------------------------------------


def _remove_row(dataset: Path) -> str:
    frame = pd.read_parquet(dataset / "manifest.parquet")
    frame.drop(index=frame.index[frame["split"] == "train"][0]).to_parquet(dataset / "manifest.parquet", index=False)
    return "manifest.parquet"


def _flip_label(dataset: Path) -> str:
    frame = pd.read_parquet(dataset / "manifest.parquet")
    card = read_card(dataset)
    row = frame.index[(frame["split"] == "train") & (frame["label"] == 0)][0]
    frame.loc[row, ["label", "label_name"]] = [1, card.classes[1]]  # a consistent pair, the wrong one
    frame.to_parquet(dataset / "manifest.parquet", index=False)
    return "manifest.parquet"


def _swap_files(dataset: Path) -> str:
    frame = pd.read_parquet(dataset / "manifest.parquet")
    train = frame[frame["split"] == "train"]
    first = train.iloc[0]["relpath"]
    second = train[train["label"] != train.iloc[0]["label"]].iloc[0]["relpath"]
    one, two = (dataset / first).read_bytes(), (dataset / second).read_bytes()
    (dataset / first).write_bytes(two)
    (dataset / second).write_bytes(one)
    return first


DAMAGE = {
    "row-removed": (_remove_row, "card"),
    "label-flipped": (_flip_label, "card"),
    "file-swapped": (_swap_files, "sha256 differs"),
}


def _command(stage: str, setup: Path, dataset: Path, out: Path) -> list[str]:
    recipe = str(setup / "tiny.yaml")
    return {
        "data-validate": ["data", "validate", str(dataset), "--metrics", str(out)],
        "longtail": [
            "data",
            "longtail",
            "--recipe",
            recipe,
            "--parent",
            str(dataset),
            "--out",
            str(out),
            "--imbalance",
            "2",
        ],
        "finetune": ["finetune", "--recipe", recipe, "--dataset", str(dataset), "--out", str(out)],
        "sample": [
            "sample",
            "--recipe",
            recipe,
            "--dataset",
            str(dataset),
            "--adapter",
            str(setup / "adapter"),
            "--out",
            str(out),
        ],
    }[stage]


@pytest.mark.parametrize("stage", ["data-validate", "longtail", "finetune", "sample"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_dataset_that_differs_from_its_record_is_refused(damage, stage, setup, tmp_path, monkeypatch, capsys):
    dataset = shutil.copytree(setup / "d", tmp_path / "d")
    make_damage, problem = DAMAGE[damage]
    named = make_damage(dataset)
    out = tmp_path / "out"
    code, _, err = run_cli(_command(stage, setup, dataset, out), monkeypatch, capsys)
    _one_error(code, err, named, problem)
    assert not out.exists() and not list(tmp_path.glob(".staging-*"))


def test_a_changed_dataset_gives_another_sampling_run(setup, tmp_path, monkeypatch, capsys):
    """A dataset edited and re-recorded (its card names the new manifest) is a new input: the
    sampling run id, derived from the verified hashes, changes with it."""
    from synthdata.data.card import CARD_FILE

    dataset = shutil.copytree(setup / "d", tmp_path / "d")
    _remove_row(dataset)
    card = json.loads((dataset / CARD_FILE).read_text())
    card["manifest_sha256"] = manifest_hash(read_manifest(dataset))
    (dataset / CARD_FILE).write_text(json.dumps(card))
    ids = []
    for folder in (setup / "d", dataset):
        out = tmp_path / f"s-{folder.parent.name}"
        code, _, err = run_cli(_command("sample", setup, folder, out), monkeypatch, capsys)
        assert code == 0, err
        ids.append(json.loads((out / "sample.json").read_text())["sample_run_id"])
    assert ids[0] != ids[1]


def _edit_record(adapter: Path, change) -> None:
    record = json.loads((adapter / "adapter.json").read_text())
    change(record)
    (adapter / "adapter.json").write_text(json.dumps(record, indent=2))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(classes=["x", "y", "z"]), "classes"),
        (lambda r: r.update(classes=list(reversed(r["classes"]))), "classes"),
        (lambda r: r["scheduler"].update(num_train_timesteps=10), "scheduler"),
    ],
    ids=["classes-renamed", "classes-reordered", "schedule-edited"],
)
def test_an_edited_adapter_record_is_refused_at_load(change, field, setup, tmp_path, monkeypatch, capsys):
    adapter = shutil.copytree(setup / "adapter", tmp_path / "adapter")
    _edit_record(adapter, change)
    out = tmp_path / "synthetic"
    argv = [
        "sample",
        "--recipe",
        str(setup / "tiny.yaml"),
        "--dataset",
        str(setup / "d"),
        "--adapter",
        str(adapter),
        "--out",
        str(out),
    ]
    code, _, err = run_cli(argv, monkeypatch, capsys)
    _one_error(code, err, "adapter.json", f"'{field}'")
    assert not out.exists()


def test_an_edited_adapter_config_is_refused_at_load(setup, tmp_path, monkeypatch, capsys):
    adapter = shutil.copytree(setup / "adapter", tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["lora_alpha"] = 64
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    out = tmp_path / "synthetic"
    argv = [
        "sample",
        "--recipe",
        str(setup / "tiny.yaml"),
        "--dataset",
        str(setup / "d"),
        "--adapter",
        str(adapter),
        "--out",
        str(out),
    ]
    code, _, err = run_cli(argv, monkeypatch, capsys)
    _one_error(code, err, "adapter_config.json")
    assert not out.exists()


# --- Figures that cannot be computed say so ---------------------------------------------------


def test_a_class_without_test_images_has_no_recall_and_leaves_the_rare_mean():
    from synthdata.downstream.metrics import NO_TEST_IMAGES, score, summarise

    labels = torch.tensor([0, 0, 0, 1, 1, 1])  # class "c" has no test image
    predictions = torch.tensor([0, 0, 0, 1, 1, 2])  # one prediction of "c" all the same
    figures = score(predictions, labels, ["a", "b", "c"], ["b", "c"])
    assert figures["recall"]["c"] is None and figures["reasons"]["recall"]["c"] == NO_TEST_IMAGES
    assert figures["rare_third_recall"] == pytest.approx(2 / 3)  # b only
    assert figures["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)  # mean over a and b
    alone = score(predictions, labels, ["a", "b", "c"], ["c"])
    assert alone["rare_third_recall"] is None and alone["reasons"]["rare_third_recall"] == NO_TEST_IMAGES
    summary = summarise([figures, figures], ["a", "b", "c"])
    assert summary["recall"]["c"] == {"mean": None, "ci95": None, "n": 2, "reason": NO_TEST_IMAGES}
    json.dumps(summary, allow_nan=False)  # null, never NaN, in the metrics file


def test_one_seed_has_no_interval():
    from synthdata.downstream.metrics import ONE_SEED, interval

    figure = interval([0.7])
    assert figure == {"mean": 0.7, "ci95": None, "n": 1, "reason": ONE_SEED}
    assert interval([0.5, 0.5])["ci95"] == [0.5, 0.5]  # two equal seeds: a real, if narrow, interval


def _metrics(seeds: list[int], rare: list[str]) -> dict:
    """Utility figures of two arms on a test split where class c has no image."""
    from synthdata.downstream.metrics import score, summarise
    from synthdata.downstream.verdict import goal, verdict

    labels, classes = torch.tensor([0, 0, 1, 1]), ["a", "b", "c"]
    runs = {
        arm: [score(torch.tensor(p), labels, classes, rare) for _ in seeds]
        for arm, p in {"real": [0, 0, 1, 0], "real+synth": [0, 0, 1, 1]}.items()
    }
    arms = {arm: {"description": arm, **summarise(r, classes)} for arm, r in runs.items()}
    metrics = {
        "arms": arms,
        "goal": goal(arms),
        "rare_classes": rare,
        "train_counts": {"a": 9, "b": 5, "c": 2},
        "test_counts": {"a": 2, "b": 2, "c": 0},
        "seeds": seeds,
        "steps": 1,
        "batch_size": 1,
        "model": "small-resnet",
        "image_size": 8,
        "budget": {"text": "1 step, set by hand.", "rungs": [], "doubled": None},
        "leak_check": {"test_images": 4},
        "runs": [],
    }
    metrics["verdict"] = verdict(metrics)
    return metrics


def test_the_printed_table_and_the_report_say_n_a_and_why(tmp_path):
    from synthdata.downstream.metrics import NO_TEST_IMAGES, ONE_SEED
    from synthdata.downstream.verdict import headline_rows
    from synthdata.reporting.downstream import utility_report

    one = _metrics([0], ["c"])
    rows = headline_rows(one)
    assert rows[0][1] == f"{one['arms']['real']['balanced_accuracy']['mean']:.3f} [{ONE_SEED}]"
    assert rows[0][2] == NO_TEST_IMAGES  # the only rare class has no test image
    assert one["goal"] == {"evaluated": False, "reason": f"rare third recall {NO_TEST_IMAGES}"}
    json.dumps(one, allow_nan=False)
    page = utility_report(tmp_path / "one", "t", one, ["a", "b", "c"])[-1].read_text()
    # each arm: three headline cells without an interval, rare-third recall and c's recall without a value
    assert page.count(ONE_SEED) >= 6 and page.count(NO_TEST_IMAGES) >= 4
    assert ">nan<" not in page.lower() and ">0.000<" not in page
    unseparated = _metrics([0], ["b"])["goal"]
    assert unseparated["evaluated"] and not unseparated["met"]
    assert (
        unseparated["rare_third_recall"]["intervals_separate"] is None
        and unseparated["rare_third_recall"]["reason"] == ONE_SEED
    )
    three = _metrics([0, 1, 2], ["b"])
    assert "n/a" not in headline_rows(three)[0][1] and three["goal"]["rare_third_recall"]["intervals_separate"] in (
        True,
        False,
    )


# --- Ctrl-C while fine-tuning ------------------------------------------------------------------

# Runs the command line with a real SIGINT sent to itself at the Nth fault point (the places a
# kill may land: every progress advance and every publishing rename), and counts the points.
_INTERRUPTING = """
import os, signal, sys
from pathlib import Path
from synthdata import faults
from synthdata.cli import main
at, count, passed = int(sys.argv[1]), Path(sys.argv[2]), [0]
def point():
    passed[0] += 1
    count.write_text(str(passed[0]))
    if passed[0] == at:
        os.kill(os.getpid(), signal.SIGINT)
faults.point = point
sys.argv = ["synthdata", *sys.argv[3:]]
main()
"""

ADAPTER_FILES = {"adapter.json", "adapter_config.json", "adapter_model.safetensors", "samples.png", "loss.png"}


def _finetune(root: Path, at: int, *args: str) -> subprocess.CompletedProcess:
    argv = [
        "finetune",
        "--recipe",
        str(root / "tiny.yaml"),
        "--dataset",
        str(root / "d"),
        "--out",
        str(root / "run" / "adapter"),
    ]
    env = {**os.environ, "SYNTHDATA_MLRUNS": str(root / "run" / "mlruns")}
    return subprocess.run(
        [sys.executable, "-c", _INTERRUPTING, str(at), str(root / "run" / "points"), *argv],
        cwd=root / "run",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ctrl_c_while_finetuning_publishes_nothing_half_way_and_a_rerun_completes(setup):
    (setup / "run").mkdir()
    reference = _finetune(setup, 0)
    assert reference.returncode == 0, reference.stderr[-2000:]
    total = int((setup / "run" / "points").read_text())
    adapter = setup / "run" / "adapter"
    assert {p.name for p in adapter.iterdir()} == ADAPTER_FILES
    # every point from the end of training on (building and publishing the adapter), and one during training
    for at in sorted({total // 3, *range(max(1, total - 6), total + 1)}):
        shutil.rmtree(setup / "run")
        (setup / "run").mkdir()
        stopped = _finetune(setup, at)
        assert stopped.returncode == 130, f"point {at}/{total}: {stopped.stderr[-2000:]}"
        assert "Traceback" not in stopped.stderr, stopped.stderr
        if adapter.exists():  # interrupted after publishing, while tidying up: whole
            assert {p.name for p in adapter.iterdir()} == ADAPTER_FILES, f"point {at}/{total}: partial adapter"
        rerun = _finetune(setup, 0)
        assert rerun.returncode == 0, f"rerun after point {at}: {rerun.stderr[-2000:]}"
        assert {p.name for p in adapter.iterdir()} == ADAPTER_FILES
        assert not [p for p in (setup / "run").iterdir() if p.name.startswith((".staging-", ".old-"))]
