"""Whether the synthetic arms helped: the goal, the comparison in words, the headline rows.

Judged on the figures ``synthdata.downstream.metrics`` gives each arm (mean and 95% interval over
seeds on the real test split). The utility stage records the goal and the verdict in its
metrics; the report stage and the command line print the same headline rows.
"""

from __future__ import annotations

from typing import Any

from synthdata.downstream.arms import DOUBLED, is_classical
from synthdata.downstream.metrics import figure_text

GOAL = {"balanced_accuracy": 0.03, "rare_third_recall": 0.10}
"""What "helps" means: the best synthetic arm beats the best classical arm (the doubled-budget
arm included) by this much, with intervals that do not overlap."""


def goal(arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The best synthetic arm against the best classical arm, per headline metric.

    Not evaluated when a metric could not be computed (the reason says which and why); with one
    seed there are no intervals, so whether they separate is unknown (None) and the goal not met.
    """
    classical = [a for a in arms if is_classical(a)]
    synthetic = [a for a in arms if not is_classical(a)]
    if not classical or not synthetic:
        return {"evaluated": False, "reason": "needs at least one classical and one synthetic arm"}
    for metric in GOAL:
        missing = [arms[a][metric]["reason"] for a in arms if arms[a][metric]["mean"] is None]
        if missing:
            return {"evaluated": False, "reason": f"{metric.replace('_', ' ')} {missing[0]}"}
    out: dict[str, Any] = {"evaluated": True, "met": True}
    for metric, margin in GOAL.items():
        best_c = max(classical, key=lambda a: arms[a][metric]["mean"])
        best_s = max(synthetic, key=lambda a: arms[a][metric]["mean"])
        low, high = arms[best_s][metric]["ci95"], arms[best_c][metric]["ci95"]
        gain = arms[best_s][metric]["mean"] - arms[best_c][metric]["mean"]
        separate = None if low is None or high is None else low[0] > high[1]
        met = gain >= margin and separate is True
        out[metric] = {
            "best_classical": best_c,
            "best_synthetic": best_s,
            "gain": gain,
            "wanted": margin,
            "intervals_separate": separate,
            "met": met,
        }
        if separate is None:
            out[metric]["reason"] = arms[best_s][metric].get("reason") or arms[best_c][metric].get("reason")
        out["met"] = out["met"] and met
    return out


def verdict(metrics: dict[str, Any]) -> list[str]:
    """The comparison in words: which arm won each headline metric, whether its interval
    overlaps the runner-up's (from the other family), and the gap to the doubled real arm."""
    arms, lines = metrics["arms"], []
    for metric in GOAL:
        scored = [a for a in arms if arms[a][metric]["mean"] is not None]
        if not scored:
            lines.append(f"{_label(metric)}: not computed ({arms[next(iter(arms))][metric].get('reason', 'n/a')}).")
            continue
        best = max(scored, key=lambda a: arms[a][metric]["mean"])
        family = is_classical(best)
        rivals = [a for a in scored if is_classical(a) != family]
        line = f"{_label(metric)}: {best} won with {figure_text(arms[best][metric])}"
        if rivals:
            rival = max(rivals, key=lambda a: arms[a][metric]["mean"])
            other = "synthetic" if family else "classical"
            line += f"; the best {other} arm, {rival}, scored {figure_text(arms[rival][metric])}"
            line += f" ({_overlap(arms[best][metric], arms[rival][metric])})"
        lines.append(line + ".")
    doubled = metrics["budget"].get("doubled")
    synthetic = [a for a in arms if not is_classical(a)]
    if doubled and synthetic:
        twice = arms[doubled + DOUBLED]
        for metric in GOAL:
            best = max(
                synthetic,
                key=lambda a: arms[a][metric]["mean"] if arms[a][metric]["mean"] is not None else float("-inf"),
            )
            if arms[best][metric]["mean"] is None or twice[metric]["mean"] is None:
                continue
            gap = arms[best][metric]["mean"] - twice[metric]["mean"]
            lines.append(
                f"Against {doubled} at twice the steps, the best synthetic arm ({best}) is {gap:+.3f} "
                f"in {_label(metric)} ({_overlap(arms[best][metric], twice[metric])})."
            )
        same = arms[doubled]["balanced_accuracy"]["mean"]
        if same is not None and twice["balanced_accuracy"]["mean"] is not None:
            lines.append(
                f"Doubling {doubled}'s steps changed its balanced accuracy by "
                f"{twice['balanced_accuracy']['mean'] - same:+.3f} "
                f"({_overlap(twice['balanced_accuracy'], arms[doubled]['balanced_accuracy'])})."
            )
    return lines


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def _overlap(one: dict[str, Any], two: dict[str, Any]) -> str:
    if one.get("ci95") is None or two.get("ci95") is None:
        return "intervals n/a: " + str(one.get("reason") or two.get("reason") or "n/a")
    apart = one["ci95"][0] > two["ci95"][1] or two["ci95"][0] > one["ci95"][1]
    return "95% intervals apart" if apart else "95% intervals overlap"


def headline_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Arm, balanced accuracy, rare-third recall and macro-F1, each mean [95% interval] or what
    stands in for a figure that could not be computed, and why."""
    return [
        [name, *(figure_text(fig[m]) for m in ("balanced_accuracy", "rare_third_recall", "macro_f1"))]
        for name, fig in metrics["arms"].items()
    ]
