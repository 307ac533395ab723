"""Recipes and overrides that must be refused in one line: a recipe that would build arbitrary
code (only allowlisted transforms with plain parameters may be built), non-finite numbers and
counts outside their stated range, in the file or on the command line, and the runtime
backstops that stop a run producing non-finite weights or blank samples before it publishes.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path

import pytest
import yaml
from test_bad_input import run_cli

from synthdata.config.recipe import Recipe, load_recipe
from synthdata.errors import RecipeError

REPO = Path(__file__).resolve().parent.parent
BASE = "name: x\ndomain: medical\ndata: {source: pbc}\n"


def _one_error_line(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _check(text: str, tmp_path: Path, monkeypatch, capsys) -> str:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    line = _one_error_line(*run_cli(["recipe", str(recipe)], monkeypatch, capsys)[::2])
    assert str(recipe) in line
    return line


# --- a recipe builds no code ------------------------------------------------------------------


def test_an_augmentation_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "pwned"
    text = BASE + (
        "utility:\n  augmentation:\n"
        f"    - {{transform: monai.LoadImage, params: {{reader: os.system, command: 'touch {marker}'}}}}\n"
    )
    line = _check(text, tmp_path, monkeypatch, capsys)
    assert "'utility.augmentation[0].transform'" in line and "monai.LoadImage" in line
    assert "albumentations.HorizontalFlip" in line and "monai.RandScaleIntensity" in line  # what is allowed
    assert not marker.exists(), "the recipe ran a command"


BAD_TRANSFORMS = {
    "import-path": ("{transform: os.system}", "utility.augmentation[0].transform", "os.system"),
    "unlisted-albumentations": (
        "{transform: albumentations.Lambda, params: {image: os.system}}",
        "utility.augmentation[0].transform",
        "albumentations.Lambda",
    ),
    "unlisted-monai": (
        "{transform: monai.ScaleIntensity}",
        "utility.augmentation[0].transform",
        "not a random MONAI transform",
    ),
    "misspelled": (
        "{transform: albumentations.HorizontalFlop}",
        "utility.augmentation[0].transform",
        "did you mean 'albumentations.HorizontalFlip'",
    ),
    "unknown-param": (
        "{transform: albumentations.HorizontalFlip, params: {q: 1}}",
        "utility.augmentation[0].params.q",
        "takes p",
    ),
    "param-names-code": (
        "{transform: albumentations.Affine, params: {interpolation: os.system}}",
        "utility.augmentation[0].params.interpolation",
        "'os.system'",
    ),
    "param-nested-mapping": (
        "{transform: albumentations.Affine, params: {scale: {x: [1, 2]}}}",
        "utility.augmentation[0].params.scale",
        "a number or a list of 2 numbers",
    ),
    "param-not-finite": (
        "{transform: albumentations.HorizontalFlip, params: {p: .nan}}",
        "utility.augmentation[0].params.p",
        "nan",
    ),
    "param-string-not-in-set": (
        "{transform: monai.RandGaussianSmooth, params: {approx: builtins.eval}}",
        "utility.augmentation[0].params.approx",
        "one of",
    ),
    "param-huge-integer": (
        "{transform: albumentations.HorizontalFlip, params: {p: " + "9" * 400 + "}}",
        "utility.augmentation[0].params.p",
        "probability",
    ),
    "param-bool-for-number": (
        "{transform: monai.RandGaussianNoise, params: {std: true}}",
        "utility.augmentation[0].params.std",
        "finite number",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRANSFORMS))
def test_an_unlisted_transform_or_parameter_is_refused(case, tmp_path, monkeypatch, capsys):
    transform, where, reason = BAD_TRANSFORMS[case]
    line = _check(BASE + f"utility:\n  augmentation:\n    - {transform}\n", tmp_path, monkeypatch, capsys)
    assert f"'{where}'" in line and reason in line


def test_every_allowlisted_transform_and_parameter_exists_in_its_library():
    import inspect

    from synthdata.downstream.augment import TRANSFORMS, transform_class

    for name, params in TRANSFORMS.items():
        accepted = inspect.signature(transform_class(name)).parameters
        assert set(params) <= set(accepted), f"{name}: {sorted(set(params) - set(accepted))}"


def test_every_repository_recipe_passes_the_check(monkeypatch, capsys):
    paths = sorted(str(p) for p in (REPO / "recipes").glob("*.yaml"))
    code, out, err = run_cli(["recipe", *paths], monkeypatch, capsys)
    assert code == 0 and not err, err
    assert out.count(": ok (") == len(paths)


def test_target_modules_must_be_module_names(tmp_path, monkeypatch, capsys):
    line = _check(BASE + "finetune: {adapter: {target_modules: ['.*']}}\n", tmp_path, monkeypatch, capsys)
    assert "'finetune.adapter.target_modules'" in line and "'.*'" in line


# --- every number finite, every count in its stated range -------------------------------------


BAD_VALUES = {
    "adapter-alpha-nan": ("finetune: {adapter: {alpha: .nan}}", "finetune.adapter.alpha", "finite"),
    "imbalance-nan": ("longtail: {imbalance: .nan}", "longtail.imbalance", "finite"),
    "imbalance-inf": ("longtail: {imbalance: .inf}", "longtail.imbalance", "finite"),
    "max-ratio-inf": ("sample: {max_ratio: .inf}", "sample.max_ratio", "finite"),
    "guidance-nan": ("sample: {guidance: .nan}", "sample.guidance", "finite"),
    "guidance-minus-inf": ("sample: {guidance: -.inf}", "sample.guidance", "finite"),
    "warmup-negative": ("finetune: {train: {warmup_steps: -1}}", "finetune.train.warmup_steps", "got -1"),
    "grad-clip-negative": ("finetune: {train: {grad_clip: -1.0}}", "finetune.train.grad_clip", "got -1.0"),
    "checkpoint-every-zero": ("finetune: {train: {checkpoint_every: 0}}", "finetune.train.checkpoint_every", "got 0"),
    "learning-rate-zero": ("finetune: {train: {learning_rate: 0}}", "finetune.train.learning_rate", "(0, "),
    "learning-rate-negative": ("pretrain: {train: {learning_rate: -0.001}}", "pretrain.train.learning_rate", "(0, "),
    "classifier-learning-rate-zero": (
        "utility: {classifier: {learning_rate: 0.0}}",
        "utility.classifier.learning_rate",
        "(0, ",
    ),
    "rank-huge": ("finetune: {adapter: {rank: 100000}}", "finetune.adapter.rank", "got 100000"),
    "utility-width-huge": ("utility: {classifier: {width: 100000}}", "utility.classifier.width", "got 100000"),
    "validate-width-huge": ("validate: {classifier: {width: 100000}}", "validate.classifier.width", "got 100000"),
    "sample-steps-huge": ("sample: {steps: 1000000}", "sample.steps", "got 1000000"),
    "sample-batch-zero": ("sample: {batch_size: 0}", "sample.batch_size", "got 0"),
    "resamples-huge": ("validate: {resamples: 1000000000}", "validate.resamples", "got 1000000000"),
    "unet-channels-huge": (
        "pretrain: {unet: {block_out_channels: [32, 100000]}}",
        "pretrain.unet.block_out_channels",
        "got 100000",
    ),
    "steps-beyond-any-float": ("sample: {steps: " + "9" * 400 + "}", "sample.steps", "[1, 1000]"),
    "gate-nan": ("validate: {gates: {min_coverage: .nan}}", "validate.gates.min_coverage", "finite"),
}
SEEDS = [
    "data: {source: pbc, split: {seed: -1}}",
    "longtail: {seed: -1}",
    "finetune: {train: {seed: -1}}",
    "pretrain: {train: {seed: -1}}",
    "sample: {seed: -1}",
    "validate: {seed: -1}",
    "validate: {classifier: {seed: -1}}",
    "utility: {classifier: {seed: -1}}",
    "utility: {seeds: [0, -1]}",
]


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_non_finite_or_absurd_value_is_refused(case, tmp_path, monkeypatch, capsys):
    section, where, reason = BAD_VALUES[case]
    line = _check(BASE + section + "\n", tmp_path, monkeypatch, capsys)
    assert f"'{where}'" in line and reason in line


@pytest.mark.parametrize("section", SEEDS, ids=[s.split(":")[0] + str(i) for i, s in enumerate(SEEDS)])
def test_a_negative_seed_is_refused(section, tmp_path, monkeypatch, capsys):
    text = (
        BASE.replace("data: {source: pbc}\n", "")
        + section
        + ("\n" if section.startswith("data") else "\ndata: {source: pbc}\n")
    )
    line = _check(text, tmp_path, monkeypatch, capsys)
    assert "seed" in line and "got -1" in line and "[0, " in line


def _numeric_fields(cls: type, prefix: str = "") -> typing.Iterator[tuple[str, type]]:
    """Every number a recipe can set, as (dotted path, int or float)."""
    for field in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[field.name]
        union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        options = [a for a in typing.get_args(tp) if a is not type(None)] if union else [tp]
        for option in options:
            if typing.get_origin(option) is list:
                option = typing.get_args(option)[0]
            if dataclasses.is_dataclass(option):
                yield from _numeric_fields(option, f"{prefix}{field.name}.")
            elif option in (int, float):
                yield f"{prefix}{field.name}", option


def _nested(path: str, value: object) -> dict:
    data: dict = {"name": "x", "domain": "medical", "data": {"source": "pbc"}}
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return data


NUMBERS = list(_numeric_fields(Recipe))


def _settings_classes(cls: type) -> typing.Iterator[type]:
    yield cls
    for tp in typing.get_type_hints(cls).values():
        for option in [tp, *typing.get_args(tp)]:
            for inner in [option, *typing.get_args(option)]:
                if dataclasses.is_dataclass(inner):
                    yield from _settings_classes(inner)


def test_every_field_that_can_hold_a_number_declares_its_range():
    for cls in set(_settings_classes(Recipe)):
        for field in dataclasses.fields(cls):
            text = str(typing.get_type_hints(cls)[field.name])
            # whole words: a Literal of names such as 'interpolate' holds no number
            if re.search(r"\b(int|float)\b|Literal\[1", text):
                assert "range" in field.metadata, f"{cls.__name__}.{field.name}"


@pytest.mark.parametrize(("path", "kind"), NUMBERS, ids=[p for p, _ in NUMBERS])
def test_every_number_in_a_recipe_is_finite_and_in_a_stated_range(path, kind, tmp_path):
    list_valued = path in ("utility.seeds", "pretrain.unet.block_out_channels")
    for value in ([math.nan, math.inf] if kind is float else []) + [10**12, -(10**12)]:
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump(_nested(path, [value] if list_valued else value)))
        with pytest.raises(RecipeError) as info:
            load_recipe(recipe)
        assert f"'{path}'" in str(info.value) and " must be " in str(info.value), str(info.value)


# --- command-line overrides, checked by the same rule ------------------------------------------


OVERRIDES = {
    "sample-guidance-inf": (["sample", "--guidance", "inf"], "sample.guidance", "finite"),
    "sample-guidance-nan": (["sample", "--guidance", "nan"], "sample.guidance", "finite"),
    "sample-max-ratio-inf": (["sample", "--max-ratio", "inf"], "sample.max_ratio", "finite"),
    "sample-steps-zero": (["sample", "--steps", "0"], "sample.steps", "got 0"),
    "sample-scheduler-unknown": (
        ["sample", "--scheduler", "euler"],
        "sample.scheduler",
        "one of ['dpm-solver++', 'ddim', 'ddpm']",
    ),
    "sample-mode-unknown": (
        ["sample", "--mode", "inpaint"],
        "sample.mode",
        "one of ['noise', 'img2img', 'interpolate']",
    ),
    "longtail-imbalance-nan": (["data", "longtail", "--imbalance", "nan"], "longtail.imbalance", "finite"),
    "longtail-imbalance-inf": (["data", "longtail", "--imbalance", "inf"], "longtail.imbalance", "finite"),
    "longtail-seed-negative": (["data", "longtail", "--seed", "-1"], "longtail.seed", "got -1"),
    "utility-seed-negative": (["utility", "--seeds", "0,-1"], "utility.seeds", "got -1"),
    "finetune-steps-zero": (["finetune", "--steps", "0"], "finetune.train.steps", "got 0"),
    "finetune-mode-unknown": (
        ["finetune", "--mode", "qlora"],
        "finetune.adapter.mode",
        "one of ['lora', 'full', 'scratch']",
    ),
    "pretrain-steps-negative": (["pretrain", "--steps", "-5"], "pretrain.train.steps", "got -5"),
}


@pytest.mark.parametrize("case", sorted(OVERRIDES))
def test_a_bad_command_line_override_is_refused_before_any_work(case, tmp_path, monkeypatch, capsys):
    argv, name, reason = OVERRIDES[case]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(BASE + "pretrain: {}\n")
    out = tmp_path / "out"
    places = {
        "sample": ["--dataset", str(tmp_path / "d"), "--adapter", str(tmp_path / "a"), "--out", str(out)],
        "longtail": ["--parent", str(tmp_path / "d"), "--out", str(out)],
        "utility": ["--dataset", str(tmp_path / "d"), "--metrics", str(out)],
        "finetune": ["--dataset", str(tmp_path / "d"), "--out", str(out)],
        "pretrain": ["--dataset", str(tmp_path / "d"), "--out", str(out)],
    }
    command = argv[1] if argv[0] == "data" else argv[0]
    line = _one_error_line(*run_cli([*argv, "--recipe", str(recipe), *places[command]], monkeypatch, capsys)[::2])
    assert f"{argv[-2]}: " in line and f"'{name}'" in line and reason in line  # the option, the key, the rule
    assert not out.exists() and not list(tmp_path.glob(".*out*"))


def test_an_option_that_chooses_lists_the_values_its_setting_allows():
    """The allowed values are spelled once, in the settings' types; the help of each option that
    chooses one lists them, in order."""
    from synthdata import cli
    from synthdata.config.recipe import AdapterSettings, SampleSettings
    from synthdata.settings import choices

    cases = [(cli.sample, SampleSettings, name) for name in ("policy", "scheduler", "mode")] + [
        (cli.finetune, AdapterSettings, "mode")
    ]
    for command, settings, name in cases:
        *first, last = choices(settings)[name]
        option = typing.get_type_hints(command, include_extras=True)[name].__metadata__[0]
        assert f"{', '.join(first)} or {last}." in option.help, (command.__name__, name, option.help)


# --- runtime backstops: nothing non-finite or blank is published -----------------------------


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    from conftest import make_sampling_setup

    return make_sampling_setup(tmp_path_factory.mktemp("adapted"))


def test_a_training_run_whose_loss_goes_non_finite_stops_before_publishing(adapted, tmp_path, monkeypatch, capsys):
    from synthdata.models import backbone

    predict = backbone.PixelBackbone.predict
    monkeypatch.setattr(backbone.PixelBackbone, "predict", lambda self, *a: predict(self, *a) * math.nan)
    out = tmp_path / "adapter"
    argv = [
        "finetune",
        "--recipe",
        str(adapted / "tiny.yaml"),
        "--dataset",
        str(adapted / "d"),
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
    ]
    line = _one_error_line(*run_cli(argv, monkeypatch, capsys)[::2])
    assert "non-finite" in line and "loss" in line and "step 1" in line
    assert not out.exists()
    assert not list((tmp_path / "work").glob("**/*.safetensors")), "a non-finite checkpoint was kept"


@pytest.mark.parametrize(
    ("decoded", "reason"), [(math.nan, "non-finite"), (0.25, "every pixel the same")], ids=["nan", "constant"]
)
def test_a_non_finite_or_blank_sample_batch_stops_before_publishing(
    decoded, reason, adapted, tmp_path, monkeypatch, capsys
):
    from synthdata.models import backbone

    monkeypatch.setattr(backbone.PixelBackbone, "decode", lambda self, latents: latents * 0 + decoded)
    out = tmp_path / "synthetic"
    argv = [
        "sample",
        "--recipe",
        str(adapted / "tiny.yaml"),
        "--dataset",
        str(adapted / "d"),
        "--adapter",
        str(adapted / "adapter"),
        "--out",
        str(out),
    ]
    line = _one_error_line(*run_cli(argv, monkeypatch, capsys)[::2])
    assert reason in line and "guidance 2" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "name", ["abc\n", "Abc", "../x", "a b"], ids=["trailing-newline", "upper-case", "dotdot", "space"]
)
def test_a_recipe_name_follows_the_one_recipe_name_rule(name, tmp_path, monkeypatch, capsys):
    line = _check(
        f"name: {name!r}\ndomain: medical\ndata: {{source: pbc}}\n".replace("'", '"'), tmp_path, monkeypatch, capsys
    )
    assert "name must be lower-case letters" in line
