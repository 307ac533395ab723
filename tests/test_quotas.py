"""The quota planner: each policy's arithmetic and the synthetic:real cap, as properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthdata.errors import SynthdataError
from synthdata.sampling.jobs import batches, make_item, plan_items, shard
from synthdata.sampling.quotas import plan_quotas
from synthdata.sampling.settings import SampleSettings


def quota_plan(real, policy="to-max", **fields):
    """The plan for ``real`` under the sample settings ``policy`` and ``fields``."""
    return plan_quotas(real, SampleSettings(policy=policy, **fields))


counts = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), st.integers(0, 5000), min_size=1, max_size=12)
ratios = st.floats(0, 50, allow_nan=False)


@given(counts, ratios)
def test_to_max_fills_to_the_largest_class_unless_capped(real, ratio):
    plan = quota_plan(real, "to-max", max_ratio=ratio)
    largest = max(real.values())
    for q in plan.classes:
        assert q.wanted == largest - q.real
        assert 0 <= q.synthetic <= q.wanted
        assert q.synthetic <= ratio * q.real + 1e-6
        # Either the class reaches the largest, or the cap is what stopped it.
        assert q.total == largest or q.synthetic == math.floor(ratio * q.real + 1e-9)


@given(counts, st.integers(0, 10_000), ratios)
def test_to_target_fills_to_the_target_unless_capped(real, target, ratio):
    plan = quota_plan(real, "to-target", target=target, max_ratio=ratio)
    for q in plan.classes:
        assert q.wanted == max(target - q.real, 0)
        assert q.total == max(target, q.real) or (q.capped and q.synthetic == q.cap)
        assert q.synthetic <= ratio * q.real + 1e-6


@given(counts, st.floats(0, 20, allow_nan=False), ratios)
def test_share_adds_a_rounded_share_of_the_real_count(real, share, ratio):
    plan = quota_plan(real, "share", share=share, max_ratio=ratio)
    for q in plan.classes:
        assert abs(q.wanted - share * q.real) <= 0.5 + 1e-6
        assert q.synthetic == min(q.wanted, q.cap)


@given(counts)
def test_default_cap_is_ten_to_one_and_empty_classes_get_nothing(real):
    plan = quota_plan({**real, "empty": 0}, "to-target", target=10**6)
    for q in plan.classes:
        assert q.synthetic == 10 * q.real
    assert plan.counts()["empty"] == 0


@given(counts, st.data())
def test_only_the_chosen_classes_get_images(real, data):
    chosen = data.draw(st.lists(st.sampled_from(sorted(real)), unique=True))
    plan = quota_plan(real, "to-max", classes=chosen)
    assert all(q.synthetic == 0 for q in plan.classes if q.name not in chosen)
    assert [q.name for q in plan.classes] == list(real)  # the dataset's class order is kept


def test_worked_example_long_tail():
    plan = quota_plan({"a": 1000, "b": 100, "c": 10, "d": 0}, "to-max")
    assert plan.counts() == {"a": 0, "b": 900, "c": 100, "d": 0}
    assert [q.capped for q in plan.classes] == [False, False, True, True]
    assert plan.synthetic == 1000


@given(counts, ratios, st.integers(0, 20000))
def test_a_budget_fills_the_rarest_classes_first(real, ratio, budget):
    free = quota_plan(real, "to-max", max_ratio=ratio)
    plan = quota_plan(real, "to-max", max_ratio=ratio, max_images=budget)
    assert plan.synthetic == min(budget, free.synthetic)
    assert all(0 <= q.synthetic <= f.synthetic for q, f in zip(plan.classes, free.classes, strict=True))
    cut = [q for q, f in zip(plan.classes, free.classes, strict=True) if q.synthetic < f.synthetic]
    if cut:  # the level is the lowest total the budget cut; no class that got images ends above level + 1
        level = min(q.total for q in cut)
        assert all(q.total <= level + 1 for q in plan.classes if q.synthetic)
        assert all(q.total in (level, level + 1) for q in cut if q.synthetic)


def test_worked_example_budget_serves_the_rarest_class_first():
    plan = quota_plan({"a": 1000, "b": 100, "c": 10, "d": 500}, "to-max", max_images=100)
    assert plan.counts() == {"a": 0, "b": 5, "c": 95, "d": 0}  # level 105: c 10 + 95, b 100 + 5
    assert [q.budgeted for q in plan.classes] == [False, True, True, True]
    odd = quota_plan({"x": 0 + 4, "y": 4, "z": 50}, "to-max", max_images=7)
    assert odd.counts() == {"x": 4, "y": 3, "z": 0}  # level 7, one left over: to the earlier class


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "balance"}, r"'policy' must be one of \['to-max', 'to-target', 'share'\], got 'balance'"),
        ({"policy": "to-target"}, "sample.target is required"),
        ({"policy": "share", "share": -1.0}, "'share' must be in"),
        ({"max_ratio": -2.0}, "max_ratio"),
        ({"classes": ["z"]}, "unknown class 'z'"),
        ({"max_images": -1}, "max_images"),
    ],
)
def test_bad_plans_are_refused_with_one_clear_reason(kwargs, message):
    """By the settings' own check (the planner relies on it) or, for the data, by the planner."""
    with pytest.raises((SynthdataError, ValueError), match=message):
        quota_plan({"a": 5, "b": 1}, **kwargs)


@settings(max_examples=50)
@given(
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 60), min_size=1), st.integers(1, 17), st.integers(1, 5)
)
def test_shards_are_disjoint_and_cover_the_plan(real, batch_size, world):
    plan = quota_plan(real, "to-max", max_ratio=3)
    items = plan_items(plan, list(real), "run0")
    cut = batches(items, batch_size)
    taken = [item for rank in range(world) for batch in shard(cut, rank, world) for item in batch]
    assert sorted(i.id for i in taken) == sorted(i.id for i in items)
    assert len({i.id for i in items}) == len(items) == plan.synthetic
    assert len({i.seed for i in items}) == len(items)


def test_an_image_id_and_seed_depend_on_run_class_and_index_only():
    assert make_item("r1", 0, "a", 3) == make_item("r1", 0, "a", 3)
    assert make_item("r1", 0, "a", 3).id != make_item("r2", 0, "a", 3).id
    assert make_item("r1", 0, "a", 3).seed != make_item("r1", 0, "a", 4).seed
    assert 0 <= make_item("r1", 0, "a", 3).seed < 2**63
