"""The Stable-Diffusion path with tiny randomly initialised components built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synthdata.models.stable_diffusion import (
    SD_LORA_TARGETS,
    class_prompts,
    load_stable_diffusion,
    stable_diffusion_backbone,
)
from synthdata.models.weights import WeightsError
from synthdata.sampling.generate import generate
from synthdata.training.loop import TrainSettings, train_denoiser


def _tokenizer_files(folder: Path) -> None:
    """A byte-level BPE vocabulary just big enough for the prompts (every other piece is <unk>)."""
    folder.mkdir(parents=True)
    words = ["a</w>", "medical</w>", "image</w>", "of</w>", "cell</w>", "blast</w>", "x</w>"]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1} | {w: i + 2 for i, w in enumerate(words)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": 8, "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    )


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = tmp_path_factory.mktemp("sd") / "tiny-sd"
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=4,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    ).save_pretrained(folder / "vae")
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=16,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=8,
        )
    ).save_pretrained(folder / "text_encoder", safe_serialization=True)
    _tokenizer_files(folder / "tokenizer")
    return folder


def test_loads_and_adapts_with_lora(sd_folder, tmp_path):
    from peft import LoraConfig, inject_adapter_in_model

    parts = load_stable_diffusion(sd_folder)
    prompts = class_prompts(["cell", "blast"], "medical")
    assert prompts == ["a medical image of cell", "a medical image of blast"]
    backbone = stable_diffusion_backbone(parts, prompts)
    assert backbone.null_class == 2 and backbone.prompt_embeddings.shape[0] == 3
    parts.unet.requires_grad_(False)
    backbone.unet = inject_adapter_in_model(
        LoraConfig(r=2, lora_alpha=2, target_modules=SD_LORA_TARGETS, init_lora_weights="gaussian"), parts.unet
    )
    trainable = {n: p for n, p in backbone.unet.named_parameters() if "lora_" in n}
    assert trainable and all("attn" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in trainable.items()}
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 4)
    result = train_denoiser(
        backbone,
        trainable,
        images,
        labels,
        parts.scheduler,
        TrainSettings(steps=3, batch_size=4, checkpoint_every=3, log_every=1, warmup_steps=1),
        tmp_path / "w",
    )
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in result.losses)
    assert any(not torch.equal(before[n], p) for n, p in trainable.items()), "training changed no LoRA weight"
    frozen = [p for n, p in backbone.unet.named_parameters() if "lora_" not in n]
    assert all(not p.requires_grad for p in frozen) and all(not p.requires_grad for p in parts.vae.parameters())
    samples = generate(
        backbone,
        parts.scheduler,
        torch.tensor([0, 1]),
        shape=(4, 8, 8),
        scheduler="ddim",
        steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert samples.shape == (2, 3, 16, 16) and torch.isfinite(samples).all()


def test_refuses_pickle_components(sd_folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sd_folder, copy)
    (copy / "text_encoder" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="refusing pickle weights"):
        load_stable_diffusion(copy)


def test_finetune_stage_adapts_a_stable_diffusion_folder(sd_folder, tmp_path):
    import shutil

    from conftest import make_image_tree

    from synthdata.config.recipe import AdapterSettings, DataSettings, FinetuneSettings, Recipe, SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source
    from synthdata.models.adapter import load_stable_diffusion_adapter
    from synthdata.stages.finetune import run_finetune

    tree = make_image_tree(tmp_path / "tree", {"cell": 8, "blast": 8})
    ingest(get_source("imagefolder", path=str(tree), dataset="d"), tmp_path / "d", split=SplitSettings())
    settings = FinetuneSettings(
        base=str(sd_folder),
        adapter=AdapterSettings(rank=2, alpha=2),
        train=TrainSettings(steps=3, batch_size=4, checkpoint_every=3, log_every=1, warmup_steps=1),
    )
    recipe = Recipe(name="sd", domain="medical", data=DataSettings(source="imagefolder", path="x"), finetune=settings)
    _, model = run_finetune(recipe, tmp_path / "d", tmp_path / "adapter", tmp_path / "work")
    record = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert record["base_kind"] == "stable-diffusion" and record["prompts"] == [
        "a medical image of blast",
        "a medical image of cell",
    ]
    assert (tmp_path / "adapter" / "samples.png").is_file()

    x, t = torch.randn(1, 4, 8, 8), torch.tensor([10])
    context = torch.randn(1, 8, 16)
    with torch.no_grad():
        trained = model.unet.eval()(x, t, encoder_hidden_states=context).sample
        loaded, _ = load_stable_diffusion_adapter(tmp_path / "adapter", sd_folder)
        assert torch.equal(trained, loaded.unet.eval()(x, t, encoder_hidden_states=context).sample)

    other = tmp_path / "other-sd"
    shutil.copytree(sd_folder, other)
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(other / "unet")
    with torch.no_grad():
        unet.conv_in.weight.add_(1.0)
    unet.save_pretrained(other / "unet")
    with pytest.raises(WeightsError, match="adapter belongs to base sha256"):
        load_stable_diffusion_adapter(tmp_path / "adapter", other)


def test_real_anchored_modes_work_in_latent_space(sd_folder, tmp_path):
    from conftest import make_image_tree

    from synthdata.config.recipe import AdapterSettings, DataSettings, FinetuneSettings, Recipe, SplitSettings
    from synthdata.data.ingest import ingest
    from synthdata.data.sources import get_source
    from synthdata.sampling.model import load_sampling_model
    from synthdata.stages.finetune import run_finetune

    tree = make_image_tree(tmp_path / "tree", {"cell": 6, "blast": 6})
    ingest(get_source("imagefolder", path=str(tree), dataset="d"), tmp_path / "d", split=SplitSettings())
    settings = FinetuneSettings(
        base=str(sd_folder),
        adapter=AdapterSettings(rank=2, alpha=2),
        train=TrainSettings(steps=1, batch_size=4, checkpoint_every=1, log_every=1, warmup_steps=1),
    )
    recipe = Recipe(name="sd", domain="medical", data=DataSettings(source="imagefolder", path="x"), finetune=settings)
    run_finetune(recipe, tmp_path / "d", tmp_path / "adapter", tmp_path / "work")
    model = load_sampling_model(tmp_path / "adapter", sd_folder)
    assert model.pixels == (3, 16, 16)  # sources are given at the VAE's pixel size, latents are 8 x 8
    sources = torch.rand(2, 3, 16, 16) * 2 - 1
    labels = torch.tensor([0, 1])

    def run(**anchors):
        generators = [torch.Generator().manual_seed(i) for i in range(2)]
        return generate(
            model.backbone,
            model.scheduler,
            labels,
            shape=model.shape,
            steps=4,
            guidance=2.0,
            generator=generators,
            **anchors,
        )

    assert torch.equal(run(sources=sources, strengths=[1.0, 1.0]), run())
    round_trip = model.backbone.decode(model.backbone.encode(sources)).clamp(-1, 1)
    assert torch.allclose(
        run(sources=sources, strengths=[0.0, 0.0]), round_trip, atol=1e-5
    )  # the source, through the VAE
    mixed = run(sources=sources, strengths=[0.5, 0.5], partners=sources.flip(0), weights=[0.3, 0.7])
    assert mixed.shape == (2, 3, 16, 16) and torch.isfinite(mixed).all()
