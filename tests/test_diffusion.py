"""Diffusion core on tiny models built here: training lowers the loss, exact resume, save/load
round-trips after training, adapters bound to their base, pickle weights refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from synthdata.config.recipe import AdapterSettings
from synthdata.models.adapter import adapt, load_adapted, save_adapter
from synthdata.models.backbone import PixelBackbone
from synthdata.models.base import UNetSettings, build_scheduler, build_unet, load_base, save_base
from synthdata.models.weights import WeightsError, read_tensors
from synthdata.sampling.generate import generate
from synthdata.training.loop import TrainSettings, train_denoiser

TINY = UNetSettings(sample_size=16, channels=3, block_out_channels=[8, 16], norm_num_groups=4, attention_head_dim=8)
FAST = TrainSettings(
    steps=8, batch_size=8, learning_rate=3e-3, warmup_steps=1, checkpoint_every=4, log_every=2, ema_decay=0.9
)


def _images(n: int = 24, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-dependent blobs: each class a different mean colour, so there is something to learn."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    base = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200]], dtype=torch.float32)[labels % 3]
    noise = torch.randn((n, 3, 16, 16), generator=generator) * 20
    return (base[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8), labels


def _tiny_base(folder: Path, seed: int = 0, classes=("p", "q", "r", "s")) -> Path:
    torch.manual_seed(seed)
    unet = build_unet(TINY, len(classes))
    save_base(
        unet,
        build_scheduler(100),
        {"classes": list(classes), "unet": vars(TINY) | {"block_out_channels": [8, 16]}},
        folder,
    )
    return folder


def _fixed_loss(backbone, images, labels, scheduler) -> float:
    generator = torch.Generator().manual_seed(123)
    x0 = images.float() / 127.5 - 1
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=generator)
    a = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        return float(
            torch.nn.functional.mse_loss(backbone.predict(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, labels), noise)
        )


def test_pretraining_lowers_the_loss_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    unet = build_unet(TINY, 3)
    scheduler = build_scheduler(100)
    backbone = PixelBackbone(unet, null_class=3)
    images, labels = _images()
    before = _fixed_loss(backbone, images, labels, scheduler)
    result = train_denoiser(
        backbone, dict(unet.named_parameters()), images, labels, scheduler, replace(FAST, steps=40), tmp_path / "work"
    )
    after = _fixed_loss(backbone, images, labels, scheduler)
    assert after < 0.7 * before, (before, after)
    assert result.steps == 40 and len(result.losses) == 20


def test_base_save_load_round_trip_after_training(tmp_path):
    torch.manual_seed(0)
    unet = build_unet(TINY, 3)
    scheduler = build_scheduler(100)
    images, labels = _images()
    train_denoiser(
        PixelBackbone(unet, 3), dict(unet.named_parameters()), images, labels, scheduler, FAST, tmp_path / "w"
    )
    sha = save_base(unet, scheduler, {"classes": ["a", "b", "c"], "unet": {}}, tmp_path / "base")
    loaded = load_base(tmp_path / "base")
    assert loaded.sha256 == sha and loaded.classes == ["a", "b", "c"] and loaded.null_class == 3
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([5, 50]), torch.tensor([0, 3])
    with torch.no_grad():
        assert torch.equal(unet.eval()(x, t, class_labels=y).sample, loaded.unet.eval()(x, t, class_labels=y).sample)
    assert json.loads((tmp_path / "base" / "base.json").read_text())["sha256"] == sha


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    images, labels = _images()

    def fresh():
        base = load_base(_tiny_base(tmp_path / "base"))
        model = adapt(base, ["x", "y", "z"], AdapterSettings(rank=2, alpha=2, dropout=0.1), seed=0)
        return model, base.scheduler

    model, scheduler = fresh()
    train_denoiser(PixelBackbone(model.unet, 3), model.trainable(), images, labels, scheduler, FAST, tmp_path / "a")
    uninterrupted = {k: v.detach().clone() for k, v in model.trainable().items()}

    model, scheduler = fresh()
    first = train_denoiser(
        PixelBackbone(model.unet, 3), model.trainable(), images, labels, scheduler, FAST, tmp_path / "b", stop_after=4
    )
    assert first.steps == 4
    model, scheduler = fresh()  # a new process: nothing survives but the checkpoint
    second = train_denoiser(
        PixelBackbone(model.unet, 3), model.trainable(), images, labels, scheduler, FAST, tmp_path / "b"
    )
    assert second.resumed_from == 4 and second.steps == 8
    resumed = model.trainable()
    assert uninterrupted.keys() == resumed.keys()
    for name, value in uninterrupted.items():
        assert torch.equal(value, resumed[name]), name


def test_lora_adapter_round_trip_after_training(tmp_path):
    base = load_base(_tiny_base(tmp_path / "base"))
    model = adapt(base, ["x", "y", "z"], AdapterSettings(rank=4, alpha=4), seed=0)
    trainable = model.trainable()
    assert any("lora_A" in n for n in trainable) and "class_embedding.weight" in trainable
    assert all("lora_" in n or n.startswith("class_embedding") for n in trainable)
    images, labels = _images()
    train_denoiser(PixelBackbone(model.unet, 3), trainable, images, labels, base.scheduler, FAST, tmp_path / "w")
    sha = save_adapter(model, tmp_path / "adapter", {"recipe": "t"})
    x, t, y = torch.randn(3, 3, 16, 16), torch.tensor([3, 30, 90]), torch.tensor([0, 2, 3])
    with torch.no_grad():
        trained = model.unet.eval()(x, t, class_labels=y).sample
        loaded = load_adapted(tmp_path / "adapter", tmp_path / "base")
        again = loaded.unet.eval()(x, t, class_labels=y).sample
        untouched = load_base(tmp_path / "base")
        untouched.unet.class_embedding = loaded.unet.class_embedding
        without_lora = untouched.unet.eval()(x, t, class_labels=y).sample
    assert torch.equal(trained, again)
    assert not torch.allclose(trained, without_lora, atol=1e-4), "the trained LoRA changes nothing"
    record = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert record["sha256"] == sha and record["base_sha256"] == base.sha256
    assert record["classes"] == ["x", "y", "z"] and 0 < record["trainable_parameters"] < record["total_parameters"]


def test_adapter_refuses_a_different_base(tmp_path):
    base = load_base(_tiny_base(tmp_path / "base", seed=0))
    model = adapt(base, ["x", "y"], AdapterSettings(rank=2, alpha=2))
    save_adapter(model, tmp_path / "adapter", {})
    _tiny_base(tmp_path / "other", seed=1)
    with pytest.raises(WeightsError, match="adapter belongs to base sha256"):
        load_adapted(tmp_path / "adapter", tmp_path / "other")


@pytest.mark.parametrize("mode", ["full", "scratch"])
def test_full_and_scratch_modes_round_trip(mode, tmp_path):
    base = load_base(_tiny_base(tmp_path / "base"))
    model = adapt(base, ["x", "y", "z"], AdapterSettings(mode=mode), seed=0)
    assert len(model.trainable()) == len(dict(model.unet.named_parameters()))
    images, labels = _images()
    train_denoiser(
        PixelBackbone(model.unet, 3),
        model.trainable(),
        images,
        labels,
        base.scheduler,
        replace(FAST, steps=2),
        tmp_path / "w",
    )
    save_adapter(model, tmp_path / "a", {})
    loaded = load_adapted(tmp_path / "a")
    x, t, y = torch.randn(1, 3, 16, 16), torch.tensor([7]), torch.tensor([1])
    with torch.no_grad():
        before, after = model.unet.eval()(x, t, class_labels=y).sample, loaded.unet.eval()(x, t, class_labels=y).sample
    # Same weights (the file's sha256 is checked on load); a UNet built by its constructor and one
    # restored by from_pretrained may pick different attention kernels, hence float-level slack.
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-5)
    assert loaded.base_sha256 == (None if mode == "scratch" else base.sha256)


@pytest.mark.parametrize("suffix", [".bin", ".ckpt", ".pt", ".pth"])
def test_pickle_weights_are_refused(suffix, tmp_path):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(b"\x80\x04 not loaded")
    with pytest.raises(WeightsError, match="refusing pickle weights"):
        read_tensors(path)
    base = _tiny_base(tmp_path / "base")
    (base / "unet" / f"diffusion_pytorch_model{suffix}").write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="refusing pickle weights"):
        load_base(base)


def test_malicious_pickle_is_never_unpickled(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "adapter_model.bin"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(WeightsError):
        read_tensors(path)
    assert not marker.exists()


def test_tampered_base_weights_are_refused(tmp_path):
    base = _tiny_base(tmp_path / "base")
    weights = base / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="differs from the one recorded"):
        load_base(base)


def test_guided_sampling_is_deterministic_for_a_seed(tmp_path):
    base = load_base(_tiny_base(tmp_path / "base"))
    backbone = PixelBackbone(base.unet, base.null_class)
    labels = torch.tensor([0, 1, 2, 3])
    runs = [
        generate(
            backbone,
            base.scheduler,
            labels,
            shape=(3, 16, 16),
            steps=4,
            guidance=2.0,
            generator=torch.Generator().manual_seed(5),
        )
        for _ in range(2)
    ]
    assert runs[0].shape == (4, 3, 16, 16) and torch.equal(runs[0], runs[1])
    assert runs[0].min() >= -1 and runs[0].max() <= 1
    ddim = generate(
        backbone,
        base.scheduler,
        labels,
        shape=(3, 16, 16),
        scheduler="ddim",
        steps=4,
        generator=torch.Generator().manual_seed(5),
    )
    assert not torch.equal(ddim, runs[0])


def test_a_fresh_and_a_reloaded_schedule_sample_the_same(tmp_path):
    base = load_base(_tiny_base(tmp_path / "base"))
    backbone = PixelBackbone(base.unet, base.null_class)
    labels = torch.tensor([0, 1])
    fresh, reloaded = (
        generate(backbone, schedule, labels, shape=(3, 16, 16), steps=5, generator=torch.Generator().manual_seed(1))
        for schedule in (build_scheduler(100), base.scheduler)
    )
    assert torch.equal(fresh, reloaded)
