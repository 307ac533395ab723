"""Training and scoring the arms of a utility comparison at one budget, resumably.

:class:`ArmRunner` trains one (arm, seed, steps) run: the network the recipe names, the arm's
batches, augmentation and loss; the validation split scored along the way (the training curve)
and at the end; the test split scored once, at the end, and never read for any choice. A
finished run is kept in the work folder under a fingerprint of everything that determines it,
so a killed stage retrains only what it had not finished, and the budget rule's ladder reuses
the runs it shares with the arms.

:func:`run_arms` chooses the budget (``synthdata.downstream.budget``), trains every arm and seed at
it, then the best classical arm, by validation balanced accuracy, at twice the budget.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from synthdata.atomic import write_text
from synthdata.classify.network import build_network
from synthdata.classify.train import (
    Checkpoint,
    ClassifierSettings,
    Objective,
    TrainLog,
    logit_adjustment,
    predict,
    random_shift,
    train_classifier,
)
from synthdata.downstream.arms import ARMS, DOUBLED, Arm, arm_of, is_classical
from synthdata.downstream.augment import Augmentation
from synthdata.downstream.batches import SyntheticMixing, mixed_draw, synthetic_weights, training_prior
from synthdata.downstream.budget import BudgetOutcome, balanced_accuracy_error, choose_budget
from synthdata.downstream.metrics import class_counts, score
from synthdata.downstream.settings import UtilitySettings
from synthdata.hashing import sha256_bytes

RECORD_FORMAT = 2
"""Part of every run's fingerprint: a record written in an older format is never read back."""


@dataclass
class Pool:
    """Images (uint8, N x C x H x W) and labels, with the hash of the manifest they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    manifest_sha256: str


@dataclass
class ArmsResult:
    runs: list[dict[str, Any]]
    """One record per (arm, seed) at the budget, then the doubled arm's."""
    budget: BudgetOutcome
    doubled: str | None
    """The classical arm also trained at 2x (by validation balanced accuracy), if any."""


@dataclass
class ArmRunner:
    settings: UtilitySettings
    classes: list[str]
    real: Pool
    val: Pool | None
    test: Pool
    synthetic: dict[str, Pool]
    rare: list[str]
    work: Path
    size: int
    domain: Augmentation | None = None

    def run(self, name: str, seed: int, steps: int) -> dict[str, Any]:
        """The record of arm ``name`` (``@2x`` included) trained with ``seed`` for ``steps``."""
        arm, settings = arm_of(name), self.settings
        pool = self.synthetic.get(arm.synthetic) if arm.synthetic else None
        images = self.real.images if pool is None else torch.cat([self.real.images, pool.images])
        labels = self.real.labels if pool is None else torch.cat([self.real.labels, pool.labels])
        classifier = replace(settings.classifier, seed=seed, balanced=arm.balanced, steps=steps)
        mixing = settings.synthetic if pool is not None else None
        key = self._fingerprint(name, classifier, pool, mixing)
        # named by the arm itself: the budget ladder's run at twice the budget is the doubled arm's
        record_path = self.work / f"{arm.name}-seed{seed}-{key}.json"
        if record_path.is_file():
            return {**json.loads(record_path.read_text()), "arm": name}
        validation = _ValidationCurve(self.val, self.classes, self.rare)
        objective = self._objective(arm, labels, classifier, mixing, validation.checkpoint)
        n = len(self.classes)
        network = lambda: build_network(settings.model, n, self.real.images.shape[1], width=classifier.width)  # noqa: E731
        model, log = train_classifier(
            images,
            labels,
            n,
            classifier,
            augment=self._augment(arm.augmented),
            description=f"{name} seed {seed}",
            network=network,
            objective=objective,
        )
        record = {
            "arm": name,
            "seed": seed,
            "fingerprint": key,
            **score(predict(model, self.test.images).argmax(1), self.test.labels, self.classes, self.rare),
            "val": validation.figures(),
            "log": self._log(arm, classifier, log, len(images), mixing),
        }
        write_text(record_path, json.dumps({**record, "arm": arm.name}) + "\n")
        return record

    def _objective(
        self,
        arm: Arm,
        labels: torch.Tensor,
        classifier: ClassifierSettings,
        mixing: SyntheticMixing | None,
        checkpoint: Checkpoint,
    ) -> Objective:
        """The arm's loss and batches: logit adjustment, synthetic weights and share, mixup / CutMix."""
        settings, real_count, n = self.settings, len(self.real.images), len(self.classes)
        share = mixing.share if mixing else None
        steps = classifier.steps
        return Objective(
            logit_adjustment=logit_adjustment(training_prior(labels, real_count, n, share), settings.logit_tau)
            if arm.logit_adjusted
            else None,
            sample_weights=synthetic_weights(len(labels), real_count, mixing.loss_weight) if mixing else None,
            mix=arm.mix,
            mix_alpha=settings.mix_alpha,
            draw=mixed_draw(labels, real_count, n, classifier.batch_size, arm.balanced, share) if mixing else None,
            checkpoint=checkpoint,
            every=max(1, steps // settings.budget.curve_points) if settings.budget.curve_points else steps,
        )

    def _log(
        self,
        arm: Arm,
        classifier: ClassifierSettings,
        log: TrainLog,
        train_images: int,
        mixing: SyntheticMixing | None,
    ) -> dict[str, Any]:
        """How the run trained: its budget, what it trained on, and its losses."""
        real_count = len(self.real.images)
        return {
            "steps": log.steps,
            "batch_size": classifier.batch_size,
            "images_seen": log.images_seen,
            "train_images": train_images,
            "real_images": real_count,
            "synthetic_images": train_images - real_count,
            "balanced": classifier.balanced,
            "augmented": arm.augmented,
            "logit_adjusted": arm.logit_adjusted,
            "mix": arm.mix,
            "synthetic_share": mixing.share if mixing else None,
            "synthetic_loss_weight": mixing.loss_weight if mixing else None,
            "model": self.settings.model,
            "image_size": self.size,
            "seconds": log.seconds,
            "losses": log.losses,
        }

    def _augment(self, augmented: bool):
        shift = random_shift(2)
        if not augmented:
            return shift
        domain = self.domain
        return lambda batch, generator: domain(shift(batch, generator), generator)

    def _fingerprint(self, name: str, classifier, pool: Pool | None, mixing) -> str:
        arm, settings = arm_of(name), self.settings
        spec = {
            "record": RECORD_FORMAT,
            "classifier": asdict(classifier),
            "arm": asdict(arm),
            "real": self.real.manifest_sha256,
            "synthetic": pool.manifest_sha256 if pool else None,
            "test": self.test.manifest_sha256,
            "val": self.val.manifest_sha256 if self.val else None,
            "curve_points": settings.budget.curve_points,
            "augmentation": [asdict(s) for s in settings.augmentation] if arm.augmented else None,
            "size": self.size,
            "model": settings.model,
            "mixing": asdict(mixing) if mixing else None,
            "logit_tau": settings.logit_tau if arm.logit_adjusted else None,
            "mix_alpha": settings.mix_alpha if arm.mix else None,
        }
        return sha256_bytes(json.dumps(spec, sort_keys=True, default=str).encode())[:16]


@dataclass
class _ValidationCurve:
    """The validation split scored at each checkpoint of one run (nothing without one)."""

    val: Pool | None
    classes: list[str]
    rare: list[str]
    curve: list[tuple[int, float]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)

    def checkpoint(self, model: torch.nn.Module, done: int) -> None:
        if self.val is not None:
            self.last.update(
                score(predict(model, self.val.images).argmax(1), self.val.labels, self.classes, self.rare)
            )
            self.curve.append((done, self.last["balanced_accuracy"]))

    def figures(self) -> dict[str, Any]:
        """The last checkpoint's balanced accuracy and its standard error, and the whole curve."""
        return {
            "balanced_accuracy": self.curve[-1][1] if self.curve else None,
            "curve": self.curve,
            "standard_error": balanced_accuracy_error(self.last["recall"], class_counts(self.val.labels, self.classes))
            if self.last
            else None,
        }


def domain_augmentation(settings: UtilitySettings) -> Augmentation | None:
    """The domain augmentation, built only when an arm, or the plateau rule's reference arm, uses it."""
    reference = ARMS.get(settings.budget.reference_arm) if settings.budget.rule == "plateau" else None
    augmented = any(ARMS[a].augmented for a in settings.arms) or (reference is not None and reference.augmented)
    return Augmentation(settings.augmentation) if augmented else None


def run_arms(runner: ArmRunner) -> ArmsResult:
    """The budget by its rule, every arm and seed at it, and the best classical arm at twice it."""
    settings = runner.settings
    first = settings.seeds[0]

    def val_score(steps: int) -> tuple[float, float]:
        val = runner.run(settings.budget.reference_arm, first, steps)["val"]
        return val["balanced_accuracy"] or 0.0, val["standard_error"]

    budget = choose_budget(
        settings.budget, settings.classifier.steps, len(runner.real.images), settings.classifier.batch_size, val_score
    )
    runs = [runner.run(name, seed, budget.steps) for name in settings.arms for seed in settings.seeds]
    doubled = None
    classical = [name for name in settings.arms if is_classical(name)]
    if settings.budget.double and classical:
        doubled = max(classical, key=lambda name: _mean_val([r for r in runs if r["arm"] == name]))
        runs += [runner.run(doubled + DOUBLED, seed, 2 * budget.steps) for seed in settings.seeds]
    return ArmsResult(runs, budget, doubled)


def _mean_val(runs: list[dict[str, Any]]) -> float:
    values = [r["val"]["balanced_accuracy"] for r in runs if r["val"]["balanced_accuracy"] is not None]
    return sum(values) / len(values) if values else float("-inf")
