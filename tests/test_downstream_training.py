"""The pieces of a trustworthy downstream check: the budget rule, the logit-adjusted loss, how
synthetic images enter batches, mixup / CutMix, and the networks a recipe may name."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from synthdata.classify.network import SmallResNet, build_network
from synthdata.classify.train import (
    ClassifierSettings,
    Objective,
    class_prior,
    logit_adjustment,
    mix_batch,
    train_classifier,
)
from synthdata.downstream.batches import mixed_draw, synthetic_count, synthetic_weights, training_prior
from synthdata.downstream.budget import BudgetSettings, balanced_accuracy_error, choose_budget, epochs_to_steps
from synthdata.errors import SynthdataError
from synthdata.settings import SettingError

# --- the budget rule -----------------------------------------------------------------------------


def _ladder(values: dict[int, float], error: float = 0.0):
    asked: list[int] = []

    def val_score(steps: int) -> tuple[float, float]:
        asked.append(steps)
        return values[steps], error

    return val_score, asked


def test_plateau_stops_at_the_rung_before_the_first_doubling_that_did_not_pay():
    # 100 images, batch 10: 2 epochs = 20 steps; the doubling 80 -> 160 gains 0.005 < 0.01
    val_score, asked = _ladder({20: 0.50, 40: 0.70, 80: 0.80, 160: 0.805, 320: 0.9})
    outcome = choose_budget(BudgetSettings(epochs=2, max_epochs=64, tolerance=0.01), 999, 100, 10, val_score)
    assert (outcome.steps, outcome.converged, asked) == (80, True, [20, 40, 80, 160])
    assert outcome.epochs == 8 and [r["steps"] for r in outcome.rungs] == [20, 40, 80, 160]
    assert "converged" in outcome.describe() and "NOT" not in outcome.describe()


def test_a_drop_counts_as_converged_and_a_ladder_still_rising_at_the_top_says_so():
    val_score, _ = _ladder({20: 0.6, 40: 0.55})
    assert choose_budget(BudgetSettings(epochs=2, max_epochs=64), 0, 100, 10, val_score).steps == 20
    val_score, asked = _ladder({20: 0.1, 40: 0.3, 80: 0.5})
    outcome = choose_budget(BudgetSettings(epochs=2, max_epochs=8), 0, 100, 10, val_score)
    assert (outcome.steps, outcome.converged, asked) == (80, False, [20, 40, 80])
    assert "NOT converged" in outcome.describe()


def test_a_gain_the_validation_split_cannot_resolve_is_no_gain():
    val_score, asked = _ladder({20: 0.50, 40: 0.58, 80: 0.70}, error=0.1)  # +0.08 is inside one standard error
    outcome = choose_budget(BudgetSettings(epochs=2, max_epochs=64, tolerance=0.01), 0, 100, 10, val_score)
    assert (outcome.steps, outcome.converged, asked) == (20, True, [20, 40])
    assert outcome.rungs[1]["standard_error"] == 0.1 and "s.e. 0.100" in outcome.describe()


def test_balanced_accuracy_error_known_answers():
    # one class of 4 images, 2 right: p = (2 + 1) / 6 = 0.5, variance 0.25 / 4; mean of one class
    assert balanced_accuracy_error({"a": 0.5}, {"a": 4}) == pytest.approx(0.25)
    # two classes: sqrt(v1 + v2) / 2; a class with one image right is still uncertain (p = 2/3)
    v1, v2 = (2 / 3) * (1 / 3) / 1, 0.5 * 0.5 / 100
    assert balanced_accuracy_error({"a": 1.0, "b": 0.5}, {"a": 1, "b": 100}) == pytest.approx(math.sqrt(v1 + v2) / 2)
    assert balanced_accuracy_error({"a": None, "b": 0.5}, {"a": 0, "b": 100}) == pytest.approx(
        0.05
    )  # an untested class is left out


def test_the_ladder_doubles_exactly_and_reaches_max_epochs_whatever_the_rounding():
    # 2060 images / 64: 8 epochs round up to 258 steps; 16 epochs (515 steps) must still be a rung (516)
    val_score, asked = _ladder({258: 0.5, 516: 0.9})
    outcome = choose_budget(BudgetSettings(epochs=8, max_epochs=16), 0, 2060, 64, val_score)
    assert asked == [258, 516] and (outcome.steps, outcome.converged) == (516, False)
    val_score, asked = _ladder({258: 0.5, 516: 0.9})
    assert choose_budget(BudgetSettings(epochs=8, max_epochs=15.9), 0, 2060, 64, val_score).steps == 258 and asked == [
        258
    ]


def test_epochs_and_hand_picked_steps_never_look_at_validation():
    def never(steps: int) -> float:
        raise AssertionError("the validation split was read")

    assert choose_budget(BudgetSettings(rule="epochs", epochs=2.5), 999, 1000, 64, never).steps == math.ceil(2500 / 64)
    outcome = choose_budget(BudgetSettings(rule="steps"), 123, 1000, 64, never)
    assert outcome.steps == 123 and "by hand" in outcome.describe()
    assert epochs_to_steps(0.001, 10, 64) == 1


def test_budget_settings_are_checked():
    with pytest.raises(ValueError, match="max_epochs"):
        BudgetSettings(epochs=20, max_epochs=10)
    with pytest.raises(ValueError):
        BudgetSettings(tolerance=float("nan"))


# --- logit adjustment ------------------------------------------------------------------------------


class _Bias(nn.Module):
    """A model that ignores its input: its logits are one learned vector."""

    def __init__(self, classes: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1)


def _fit_bias(labels: torch.Tensor, adjustment: torch.Tensor | None) -> torch.Tensor:
    images = torch.zeros(len(labels), 1, 8, 8, dtype=torch.uint8)
    settings = ClassifierSettings(steps=400, batch_size=100, learning_rate=0.5, weight_decay=0.0)
    everything = Objective(
        logit_adjustment=adjustment, draw=lambda step, generator: torch.arange(len(labels))
    )  # full batches: no draw noise
    model, _ = train_classifier(images, labels, 2, settings, network=lambda: _Bias(2), objective=everything)
    return torch.softmax(model.bias.detach(), dim=0)


def test_logit_adjustment_known_answer_a_constant_model_predicts_the_balanced_prior():
    # 90 % class 0: plain cross-entropy learns p = (0.9, 0.1); the logit-adjusted loss learns
    # logits whose softmax is uniform, the Bayes-optimal prediction for the balanced error
    labels = torch.tensor([0] * 90 + [1] * 10)
    prior = class_prior(labels, 2)
    assert torch.allclose(prior, torch.tensor([0.9, 0.1], dtype=torch.float64))
    assert torch.allclose(logit_adjustment(prior, 1.0), torch.log(torch.tensor([0.9, 0.1])))
    assert torch.allclose(_fit_bias(labels, None), torch.tensor([0.9, 0.1]), atol=0.01)
    assert torch.allclose(_fit_bias(labels, logit_adjustment(prior, 1.0)), torch.tensor([0.5, 0.5]), atol=0.01)


def test_a_class_without_images_keeps_a_finite_prior():
    prior = class_prior(torch.tensor([0, 0, 0]), 3)
    assert torch.isfinite(torch.log(prior)).all() and prior.argmax() == 0


# --- how synthetic images enter the batches ----------------------------------------------------


@pytest.mark.parametrize(("share", "batch"), [(0.3, 16), (0.25, 64), (0.1, 7), (0.0, 8), (1.0, 8)])
@pytest.mark.parametrize("balanced", [False, True])
def test_the_synthetic_share_of_batches_is_exact(share, batch, balanced):
    labels = torch.cat([torch.tensor([0] * 50 + [1] * 5), torch.tensor([1] * 20 + [2] * 3)])  # 55 real, 23 synthetic
    draw = mixed_draw(labels, 55, 3, batch, balanced, share)
    synthetic_total = 0
    for step in range(500):
        index = draw(step, torch.Generator().manual_seed(step))
        assert len(index) == batch
        assert int((index >= 55).sum()) == synthetic_count(share, batch, step)
        synthetic_total += int((index >= 55).sum())
    assert synthetic_total == math.floor(share * batch * 500)  # exact over many batches
    assert abs(synthetic_total / (batch * 500) - share) <= 1 / (batch * 500)


def test_pooled_draws_ignore_the_share_and_weights_and_priors_follow_the_settings():
    labels = torch.tensor([0] * 8 + [1] * 2)
    index = mixed_draw(labels, 10, 2, 32, False, 0.5)(
        0, torch.Generator().manual_seed(0)
    )  # no synthetic images: pooled
    assert len(index) == 32 and int(index.max()) < 10
    assert synthetic_weights(10, 10, 0.5) is None and synthetic_weights(10, 6, 1.0) is None
    assert synthetic_weights(10, 6, 0.25).tolist() == [1.0] * 6 + [0.25] * 4
    mixed = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1])  # real: 3 x class 0; synthetic: 5 x class 1
    # a class without images counts half an image: real (3, 0.5) / 3.5, synthetic (0.5, 5) / 5.5
    expected = 0.8 * torch.tensor([3, 0.5]) / 3.5 + 0.2 * torch.tensor([0.5, 5]) / 5.5
    assert torch.allclose(training_prior(mixed, 3, 2, 0.2), expected.double())
    assert torch.allclose(training_prior(mixed, 3, 2, None), torch.tensor([3 / 8, 5 / 8], dtype=torch.float64))


def test_a_synthetic_loss_weight_of_zero_trains_as_if_synthetic_pixels_did_not_matter():
    torch.manual_seed(0)
    real = torch.randint(0, 255, (12, 3, 8, 8), dtype=torch.uint8)
    fake = torch.randint(0, 255, (12, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 12)
    settings = ClassifierSettings(steps=5, batch_size=8)
    draw = mixed_draw(labels, 12, 2, 8, False, 0.5)

    def fit(synthetic: torch.Tensor, weight: float) -> torch.Tensor:
        linear = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))  # noqa: E731 - no batch statistics
        objective = Objective(draw=draw, sample_weights=synthetic_weights(24, 12, weight))
        model, _ = train_classifier(
            torch.cat([real, synthetic]), labels, 2, settings, network=linear, objective=objective
        )
        return model[1].weight.detach()

    assert torch.equal(fit(fake, 0.0), fit(255 - fake, 0.0))
    assert not torch.allclose(fit(fake, 1.0), fit(255 - fake, 1.0))
    assert not torch.allclose(fit(fake, 0.5), fit(fake, 1.0))


# --- mixup and CutMix (MONAI) --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_keeps_targets_distributions_and_is_seeded(kind):
    images = torch.stack([torch.full((3, 8, 8), float(v)) for v in (-1.0, -0.5, 0.5, 1.0)])
    targets = nn.functional.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    one, t_one = mix_batch(kind, 1.0, images, targets, seed=7)
    two, t_two = mix_batch(kind, 1.0, images, targets, seed=7)
    other, _ = mix_batch(kind, 1.0, images, targets, seed=8)
    assert torch.equal(one, two) and torch.equal(t_one, t_two) and not torch.equal(one, other)
    assert torch.allclose(t_one.sum(1), torch.ones(4)) and one.shape == images.shape
    if kind == "cutmix":
        # every pixel comes from one of the four images, unblended, and some image holds a patch of another
        assert set(one.unique().tolist()) <= {-1.0, -0.5, 0.5, 1.0}
        assert any(
            len(image.unique()) > 1 for seed in range(5) for image in mix_batch(kind, 1.0, images, targets, seed)[0]
        )
    else:
        # a mixed image is a blend with the weight its target gives its own class
        assert not set(one.unique().tolist()) <= {-1.0, -0.5, 0.5, 1.0}


# --- your own perception model -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "channels"), [("small-resnet", 3), ("monai:resnet18", 3), ("monai:resnet10", 1)])
def test_networks_are_built_offline_and_classify_any_size(name, channels):
    torch.manual_seed(0)
    network = build_network(name, 5, channels, width=4)
    assert network(torch.zeros(2, channels, 28, 28)).shape == (2, 5)
    if name == "small-resnet":
        assert isinstance(network, SmallResNet)


@pytest.mark.parametrize(
    ("name", "message"),
    [("resnet18", "must be small-resnet"), ("monai:densenet121", "not one of"), ("timm:../x", "must be")],
)
def test_a_network_name_outside_the_rule_is_refused(name, message):
    with pytest.raises(SettingError, match=message):
        build_network(name, 2, 3)


def test_timm_networks_are_built_without_weights_or_refused_in_one_line():
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(SynthdataError, match="needs timm.*torchvision"):
            build_network("timm:resnet18", 4, 3)
        return
    network = build_network("timm:resnet18", 4, 3)  # pretrained=False: nothing is downloaded
    assert network(torch.zeros(1, 3, 32, 32)).shape == (1, 4)
