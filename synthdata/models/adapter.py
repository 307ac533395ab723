"""Adapting a base to a domain: LoRA (peft) on the frozen base plus a new class table.

The domain's classes get a fresh class-embedding table (one row per class and a null row),
each row initialised from the base's null row, i.e. from the base's unconditional behaviour.
An adapter is saved as a folder:

    adapter_model.safetensors   LoRA weights (peft naming) and ``class_embedding.weight``
    adapter_config.json         the peft ``LoraConfig``
    unet/                       instead of the two above in ``full``/``scratch`` modes: the
                                whole UNet as a diffusers folder
    adapter.json                classes, mode, the sha256 of the base it belongs to, training record

``adapter.json`` records the weights file's sha256, and the weights file carries (as safetensors
metadata) every field of ``adapter.json`` and ``adapter_config.json`` that decides what the
weights mean: classes, mode, base, schedule, LoRA scaling. Either file edited after fine-tuning
is refused at load, as is loading onto a base whose sha256 differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from synthdata.atomic import build_folder
from synthdata.hashing import file_sha256
from synthdata.models.base import BaseModel, UNetSettings, build_unet, load_base
from synthdata.models.weights import WeightsError, read_metadata, read_tensors, refuse_pickle, write_tensors
from synthdata.settings import SettingError, check_choices, check_numbers

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_RECORD = "adapter.json"
PEFT_CONFIG = "adapter_config.json"
BOUND_FIELDS = (
    "mode",
    "classes",
    "null_class",
    "base_sha256",
    "base_kind",
    "prompts",
    "sample_size",
    "channels",
    "scheduler",
    "dataset_manifest_sha256",
)
"""The fields of ``adapter.json`` that decide what the weights mean, bound into the weights file
(timings, hardware and run ids are left out: they differ between two runs of the same job)."""
BOUND_METADATA = "synthdata.adapter"
"""The safetensors metadata key holding the bound fields (and the LoRA config) as JSON."""
AdapterMode = Literal["lora", "full", "scratch"]
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
"""A submodule name as peft matches it (``to_out.0``): a plain name, never a pattern."""


@dataclass(frozen=True)
class AdapterSettings:
    """How the base is adapted. ``lora``: base frozen, LoRA on attention projections and
    convolutions plus a new class table; ``full``: every base weight trained; ``scratch``: the
    same architecture from random initialisation (no base), for comparison."""

    mode: AdapterMode = "lora"
    rank: int = field(default=8, metadata={"range": "[1, 512]"})
    """LoRA rank; more than a layer's channels adds nothing."""
    alpha: float = field(default=8.0, metadata={"range": "(0, 4096]"})
    """LoRA scale: the update is (alpha / rank) B A."""
    dropout: float = field(default=0.0, metadata={"range": "[0, 1)"})
    target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])
    """Submodule names (peft matches them as name suffixes), never patterns."""

    def __post_init__(self) -> None:
        check_numbers(self)
        check_choices(self)
        if not self.target_modules:
            raise ValueError("finetune.adapter.target_modules must name at least one module")
        odd = [name for name in self.target_modules if not _MODULE_NAME.fullmatch(name)]
        if odd:
            raise SettingError("target_modules", f"must be module names like to_q or to_out.0, got {odd[0]!r}")


@dataclass
class AdaptedModel:
    """A base (or scratch) UNet prepared for a domain, ready to train or to sample."""

    unet: Any
    classes: list[str]
    mode: str
    base_sha256: str | None
    lora_config: Any | None = None
    prompts: list[str] | None = None
    """Stable Diffusion bases: the prompt of each class (conditioning instead of a class table)."""

    @property
    def null_class(self) -> int:
        return len(self.classes)

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        """The parameters this mode trains: LoRA + class table, or everything."""
        named = dict(self.unet.named_parameters())
        if self.mode == "lora":
            return {n: p for n, p in named.items() if "lora_" in n or n.startswith("class_embedding.")}
        return named


def _new_class_table(unet: Any, base_null_row: torch.Tensor | None, num_classes: int) -> torch.nn.Embedding:
    dim = unet.time_embedding.linear_2.out_features
    table = torch.nn.Embedding(num_classes + 1, dim)
    if base_null_row is not None:
        with torch.no_grad():
            table.weight.copy_(base_null_row.expand(num_classes + 1, dim))
    return table


def lora_config(settings: AdapterSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        init_lora_weights="gaussian",
    )


def adapt(
    base: BaseModel | None,
    classes: list[str],
    settings: AdapterSettings,
    *,
    unet_settings: UNetSettings | None = None,
    seed: int = 0,
) -> AdaptedModel:
    """Prepare a UNet for ``classes`` in the given mode (``scratch`` needs ``unet_settings``)."""
    from peft import inject_adapter_in_model

    torch.manual_seed(seed)
    if settings.mode == "scratch":
        if unet_settings is None and base is None:
            raise ValueError("scratch mode needs the architecture (unet_settings or a base to copy it from)")
        architecture = unet_settings or UNetSettings(**base.record["unet"])
        return AdaptedModel(build_unet(architecture, len(classes)), list(classes), "scratch", None)
    if base is None:
        raise ValueError(f"{settings.mode} mode needs a base")
    unet = base.unet
    null_row = unet.class_embedding.weight[base.null_class].detach().clone()
    unet.class_embedding = _new_class_table(unet, null_row, len(classes))
    unet.register_to_config(num_class_embeds=len(classes) + 1)
    config = None
    if settings.mode == "lora":
        config = lora_config(settings)
        for parameter in unet.parameters():
            parameter.requires_grad_(False)
        unet = inject_adapter_in_model(config, unet)
    return AdaptedModel(unet, list(classes), settings.mode, base.sha256, config)


def save_adapter(model: AdaptedModel, folder: Path, record: dict[str, Any]) -> str:
    """Write the adapter folder atomically; returns the sha256 of its weights file."""
    digests = []

    def build(staging: Path) -> list[Path]:
        digests.append(write_adapter(model, staging, record))
        return [staging / ADAPTER_RECORD]

    build_folder(Path(folder), build)
    return digests[0]


def _bound(meta: dict[str, Any], peft_config: dict[str, Any] | None) -> str:
    """The JSON of what the weights are bound to (see :data:`BOUND_FIELDS`)."""
    bound = {name: meta.get(name) for name in BOUND_FIELDS} | {PEFT_CONFIG: peft_config}
    # through JSON and back first: the comparison at load sees what a JSON file can hold
    return json.dumps(json.loads(json.dumps(bound, default=sorted)), sort_keys=True)


def write_adapter(model: AdaptedModel, folder: Path, record: dict[str, Any]) -> str:
    """Write the adapter files into the existing ``folder`` (a staging folder: publishing is the
    caller's); returns the sha256 of its weights file."""
    from peft import get_peft_model_state_dict

    folder = Path(folder)
    meta = {
        **record,
        "mode": model.mode,
        "classes": model.classes,
        "null_class": model.null_class,
        "base_sha256": model.base_sha256,
        "base_kind": "stable-diffusion" if model.prompts is not None else "synthdata-pixel-base",
        "prompts": model.prompts,
    }
    if model.mode == "lora":
        tensors = dict(get_peft_model_state_dict(model.unet))
        if model.prompts is None:
            tensors["class_embedding.weight"] = model.unet.class_embedding.weight
        # peft keeps target_modules as a set: sorted, so the file does not depend on the hash seed
        peft_config = json.loads(json.dumps(model.lora_config.to_dict(), default=sorted))
        (folder / PEFT_CONFIG).write_text(json.dumps(peft_config, indent=2) + "\n")
        write_tensors(tensors, folder / ADAPTER_WEIGHTS, metadata={BOUND_METADATA: _bound(meta, peft_config)})
    else:
        model.unet.save_pretrained(folder / "unet", safe_serialization=True)
        # written again with the binding (diffusers' own writer takes no metadata), "format" kept for diffusers
        path = folder / weights_file(model.mode)
        write_tensors(read_tensors(path), path, metadata={"format": "pt", BOUND_METADATA: _bound(meta, None)})
    sha = file_sha256(folder / weights_file(model.mode))
    meta |= {
        "sha256": sha,
        "trainable_parameters": sum(p.numel() for p in model.trainable().values()),
        "total_parameters": sum(p.numel() for p in model.unet.parameters()),
    }
    (folder / ADAPTER_RECORD).write_text(json.dumps(meta, indent=2) + "\n")
    return sha


def weights_file(mode: str) -> str:
    """Where a mode keeps its weights inside the adapter folder."""
    return ADAPTER_WEIGHTS if mode == "lora" else "unet/diffusion_pytorch_model.safetensors"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise WeightsError(f"{path}: not a JSON object")
    return value


def read_adapter_record(folder: Path | str) -> dict[str, Any]:
    """``adapter.json`` of an adapter folder, once checked against its weights.

    No pickle weights; the weights file exists and has the sha256 the record names; the record's
    meaningful fields and the LoRA config are those the weights were saved with. The first
    problem is one :class:`WeightsError` naming the file and the field.
    """
    folder = Path(folder)
    path = folder / ADAPTER_RECORD
    if not path.is_file():
        raise WeightsError(f"{folder}: not a synthdata adapter (no {ADAPTER_RECORD})")
    refuse_pickle(folder)
    meta = _read_json(path)
    weights_path = folder / weights_file(str(meta.get("mode")))
    if not weights_path.is_file():
        raise WeightsError(f"{weights_path}: adapter weights missing; the adapter cannot be verified")
    if file_sha256(weights_path) != meta.get("sha256"):
        raise WeightsError(f"{weights_path}: sha256 differs from the one recorded in {ADAPTER_RECORD}")
    bound = read_metadata(weights_path).get(BOUND_METADATA)
    if bound is None:
        raise WeightsError(
            f"{weights_path}: records no {ADAPTER_RECORD} to check it against (made by an older synthdata); "
            "fine-tune again"
        )
    saved = json.loads(bound)
    peft_config = _read_json(folder / PEFT_CONFIG) if meta["mode"] == "lora" else None
    present = json.loads(_bound(meta, peft_config))
    if saved["base_sha256"] != present["base_sha256"]:
        raise WeightsError(
            f"{path}: adapter belongs to base sha256 {str(saved['base_sha256'])[:16]}…, but 'base_sha256' was "
            f"edited to {str(present['base_sha256'])[:16]}… after fine-tuning"
        )
    for name in [*BOUND_FIELDS, PEFT_CONFIG]:
        if saved.get(name) != present.get(name):
            where = folder / PEFT_CONFIG if name == PEFT_CONFIG else path
            raise WeightsError(
                f"{where}: '{name}' is not what the weights were saved with (edited after fine-tuning); "
                "fine-tune again rather than edit an adapter"
            )
    return meta


def _check_base(folder: Path, meta: dict[str, Any], base_sha256: str, base_path: Any) -> None:
    if base_sha256 != meta["base_sha256"]:
        raise WeightsError(
            f"{folder}: adapter belongs to base sha256 {meta['base_sha256'][:16]}…, "
            f"but {base_path} has sha256 {base_sha256[:16]}…; load it onto its own base"
        )


def _lora_config_of(folder: Path) -> Any:
    from peft import LoraConfig

    saved = json.loads((folder / PEFT_CONFIG).read_text())
    return LoraConfig(**{k: v for k, v in saved.items() if k in LoraConfig.__dataclass_fields__})


def load_adapted(folder: Path | str, base_folder: Path | str | None = None) -> AdaptedModel:
    """Load an adapter and the base it belongs to; a different base is refused by sha256."""
    from diffusers import UNet2DModel
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    folder = Path(folder)
    meta = read_adapter_record(folder)
    weights_path = folder / weights_file(meta["mode"])
    classes = list(meta["classes"])
    if meta["mode"] in ("full", "scratch"):
        unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True)
        return AdaptedModel(unet, classes, meta["mode"], meta["base_sha256"])
    tensors = read_tensors(weights_path)
    if meta.get("base_kind") == "stable-diffusion":
        raise WeightsError(f"{folder}: a Stable Diffusion adapter; load it with load_stable_diffusion_adapter")
    base = load_base(base_folder)
    _check_base(folder, meta, base.sha256, base.path)
    unet = base.unet
    unet.class_embedding = torch.nn.Embedding(len(classes) + 1, unet.time_embedding.linear_2.out_features)
    config = _lora_config_of(folder)
    unet = inject_adapter_in_model(config, unet)
    table = tensors.pop("class_embedding.weight")
    outcome = set_peft_model_state_dict(unet, tensors)
    if getattr(outcome, "unexpected_keys", None):
        raise WeightsError(f"{weights_path}: keys that fit no LoRA layer of this base: {outcome.unexpected_keys[:3]}")
    with torch.no_grad():
        unet.class_embedding.weight.copy_(table)
    return AdaptedModel(unet, classes, "lora", base.sha256, config)


def adapt_stable_diffusion(
    parts: Any, classes: list[str], prompts: list[str], settings: AdapterSettings
) -> AdaptedModel:
    """LoRA on a Stable Diffusion UNet's attention projections (``lora`` mode only)."""
    from peft import inject_adapter_in_model

    from synthdata.models.stable_diffusion import SD_LORA_TARGETS

    if settings.mode != "lora":
        raise WeightsError(f"Stable Diffusion bases are adapted with LoRA only, not '{settings.mode}'")
    targets = [t for t in settings.target_modules if t in SD_LORA_TARGETS] or SD_LORA_TARGETS
    config = lora_config(replace(settings, target_modules=targets))
    parts.unet.requires_grad_(False)
    unet = inject_adapter_in_model(config, parts.unet)
    return AdaptedModel(unet, list(classes), "lora", parts.sha256, config, prompts=list(prompts))


def load_stable_diffusion_adapter(folder: Path | str, base_folder: Path | str) -> tuple[AdaptedModel, Any]:
    """A Stable Diffusion adapter on its base; returns the model and the loaded base parts."""
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    from synthdata.models.stable_diffusion import load_stable_diffusion

    folder = Path(folder)
    meta = read_adapter_record(folder)
    weights_path = folder / ADAPTER_WEIGHTS
    parts = load_stable_diffusion(base_folder)
    _check_base(folder, meta, parts.sha256, base_folder)
    config = _lora_config_of(folder)
    parts.unet = inject_adapter_in_model(config, parts.unet)
    set_peft_model_state_dict(parts.unet, read_tensors(weights_path))
    return AdaptedModel(parts.unet, meta["classes"], "lora", parts.sha256, config, prompts=meta["prompts"]), parts
