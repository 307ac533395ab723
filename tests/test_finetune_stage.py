"""The finetune stage end to end on tiny data: adapter bound to its base, exact resume, MLflow."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import pytest
from conftest import make_image_tree, stage_runs

from synthdata.config.recipe import AdapterSettings, DataSettings, FinetuneSettings, Recipe, SplitSettings
from synthdata.data.ingest import ingest
from synthdata.data.sources import get_source
from synthdata.hashing import file_sha256
from synthdata.models.adapter import load_adapted
from synthdata.models.base import UNetSettings, build_scheduler, build_unet, save_base
from synthdata.settings import build
from synthdata.stages.finetune import run_finetune
from synthdata.training.loop import TrainSettings

TINY = UNetSettings(sample_size=16, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    import torch

    torch.manual_seed(0)
    save_base(build_unet(TINY, 4), build_scheduler(100), {"classes": list("pqrs"), "unet": vars(TINY)}, root / "base")
    tree = make_image_tree(root / "tree", {"a": 12, "b": 12, "c": 12})
    ingest(get_source("imagefolder", path=str(tree), dataset="d"), root / "d", split=SplitSettings())
    return root


def _recipe(root, **adapter) -> Recipe:
    train = TrainSettings(steps=6, batch_size=4, checkpoint_every=2, log_every=2, warmup_steps=1)
    finetune = FinetuneSettings(
        base=str(root / "base"), adapter=AdapterSettings(rank=2, alpha=2, **adapter), train=train
    )
    return Recipe(name="tiny", domain="medical", data=DataSettings(source="imagefolder", path="x"), finetune=finetune)


class _Killed(Exception):
    pass


def test_killed_finetune_resumes_to_the_same_adapter(setup, tmp_path, monkeypatch):
    recipe = _recipe(setup)
    run_finetune(recipe, setup / "d", tmp_path / "a", tmp_path / "a.work")

    real_log = mlflow.log_metrics

    def dies_at_step_4(metrics, step=None, **kwargs):
        if step == 4:  # after the step-2 checkpoint, before the step-4 one
            raise _Killed
        return real_log(metrics, step=step, **kwargs)

    monkeypatch.setattr(mlflow, "log_metrics", dies_at_step_4)
    with pytest.raises(_Killed):
        run_finetune(recipe, setup / "d", tmp_path / "b", tmp_path / "b.work")
    monkeypatch.setattr(mlflow, "log_metrics", real_log)
    assert not (tmp_path / "b").exists()
    assert list(stage_runs()["status"]).count("FAILED") == 1
    resumed, _ = run_finetune(recipe, setup / "d", tmp_path / "b", tmp_path / "b.work")
    assert resumed.resumed_from == 2  # the last checkpoint before the kill
    assert file_sha256(tmp_path / "a" / "adapter_model.safetensors") == file_sha256(
        tmp_path / "b" / "adapter_model.safetensors"
    )
    runs = stage_runs()
    assert sorted(runs["status"]) == ["FINISHED", "FINISHED"]  # the killed run was resumed, not left dangling
    record = json.loads((tmp_path / "a" / "adapter.json").read_text())
    assert record["classes"] == ["a", "b", "c"] and record["base_sha256"] == file_sha256(
        setup / "base" / "unet" / "diffusion_pytorch_model.safetensors"
    )
    assert (tmp_path / "a" / "samples.png").is_file()
    assert load_adapted(tmp_path / "a", setup / "base").classes == ["a", "b", "c"]


def test_changed_settings_do_not_resume_a_stale_checkpoint(setup, tmp_path):
    run_finetune(_recipe(setup), setup / "d", tmp_path / "a", tmp_path / "a.work", stop_after=4)
    other = _recipe(setup, dropout=0.1)
    result, _ = run_finetune(other, setup / "d", tmp_path / "a", tmp_path / "a.work")
    assert result.resumed_from == 0


def test_recipe_section_parses_and_rejects_unknown_keys(tmp_path):
    data = {"base": None, "adapter": {"mode": "full", "rank": 4}, "train": {"steps": 10, "batch_size": 2}}
    settings = build(FinetuneSettings, data, source="r.yaml", where="finetune")
    assert settings.adapter.mode == "full" and settings.train.steps == 10
    from synthdata.errors import RecipeError

    with pytest.raises(RecipeError, match="unknown key 'finetune.adapter.rnak'"):
        build(FinetuneSettings, {"adapter": {"rnak": 4}}, source="r.yaml", where="finetune")
    with pytest.raises(RecipeError, match="'finetune.adapter.mode' must be one of"):
        build(FinetuneSettings, {"adapter": {"mode": "qlora"}}, source="r.yaml", where="finetune")
    assert replace(settings, base="x").base == "x"


def test_the_class_table_learns_faster_with_its_own_rate(setup, tmp_path):
    """Rows of a new class table start equal (the base's null row); the scale separates them."""
    from dataclasses import replace

    spreads = {}
    for scale in (1.0, 30.0):
        recipe = _recipe(setup)
        recipe = replace(
            recipe, finetune=replace(recipe.finetune, train=replace(recipe.finetune.train, class_table_lr_scale=scale))
        )
        _, model = run_finetune(recipe, setup / "d", tmp_path / f"a{scale}", tmp_path / f"a{scale}.work")
        table = model.unet.class_embedding.weight.detach()
        spreads[scale] = float((table[:-1] - table[-1]).abs().max())
    assert spreads[30.0] > 5 * spreads[1.0] > 0
