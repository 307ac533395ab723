"""The Stable-Diffusion path with tiny randomly initialised components built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synthdata.models.stable_diffusion import SD_LORA_TARGETS, class_prompts, load_stable_diffusion, stable_diffusion_backbone
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
    (folder / "special_tokens_map.json").write_text(json.dumps({"unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 8, "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = tmp_path_factory.mktemp("sd") / "tiny-sd"
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4,
    ).save_pretrained(folder / "unet")  # fmt: skip
    AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 8), latent_channels=4,
        norm_num_groups=4, sample_size=16,
    ).save_pretrained(folder / "vae")  # fmt: skip
    CLIPTextModel(
        CLIPTextConfig(vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8)
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
    backbone.unet = inject_adapter_in_model(LoraConfig(r=2, lora_alpha=2, target_modules=SD_LORA_TARGETS, init_lora_weights="gaussian"), parts.unet)
    trainable = {n: p for n, p in backbone.unet.named_parameters() if "lora_" in n}
    assert trainable and all("attn" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in trainable.items()}
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 4)
    result = train_denoiser(backbone, trainable, images, labels, parts.scheduler,
                            TrainSettings(steps=3, batch_size=4, checkpoint_every=3, log_every=1, warmup_steps=1), tmp_path / "w")  # fmt: skip
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in result.losses)
    assert any(not torch.equal(before[n], p) for n, p in trainable.items()), "training changed no LoRA weight"
    frozen = [p for n, p in backbone.unet.named_parameters() if "lora_" not in n]
    assert all(not p.requires_grad for p in frozen) and all(not p.requires_grad for p in parts.vae.parameters())
    samples = generate(backbone, parts.scheduler, torch.tensor([0, 1]), shape=(4, 8, 8), scheduler="ddim", steps=2,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert samples.shape == (2, 3, 16, 16) and torch.isfinite(samples).all()


def test_refuses_pickle_components(sd_folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sd_folder, copy)
    (copy / "text_encoder" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="refusing pickle weights"):
        load_stable_diffusion(copy)
