"""Recipe loading: strict keys, strict types, checked values, one clear error line."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthdata.config.recipe import DataSettings, LongtailSettings, Recipe, SplitSettings, load_recipe
from synthdata.errors import RecipeError
from synthdata.settings import flatten

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
SYNTHDATA = Path(sys.executable).parent / "synthdata"

BASE = {
    "name": "mine",
    "domain": "medical",
    "description": "a test recipe",
    "data": {"source": "imagefolder", "path": "data/mine", "split": {"val_fraction": 0.1, "seed": 0}},
    "longtail": {"enabled": True, "imbalance": 10, "seed": 0},
}


def _merge(base: dict, changes: dict) -> dict:
    """Deep-merge ``changes`` into a copy of ``base``; a value of ``...`` deletes the key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _write(tmp_path: Path, content: dict | str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False), encoding="utf-8"
    )
    return path


def _error(path: Path) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# --- valid recipes ----------------------------------------------------------------------------


def test_repo_has_recipes():
    assert len(RECIPES) >= 6


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_repo_recipe_loads(path):
    spec = load_recipe(path)
    assert isinstance(spec, Recipe)
    assert spec.name == path.stem
    assert spec.domain in ("medical", "satellite", "driving", "generic")
    assert isinstance(spec.data, DataSettings)
    assert isinstance(spec.data.split, SplitSettings)
    assert isinstance(spec.longtail, LongtailSettings)


def test_values_are_typed_and_defaults_filled(tmp_path):
    spec = load_recipe(_write(tmp_path, BASE))
    assert spec.name == "mine"
    assert spec.data.path == "data/mine"
    assert spec.data.split == SplitSettings(val_fraction=0.1, test_fraction=0.2, seed=0)
    assert spec.longtail.imbalance == 10.0 and isinstance(spec.longtail.imbalance, float)
    assert spec.longtail.max_per_class is None
    assert spec.data.classes is None


def test_minimal_recipe_gets_defaults(tmp_path):
    spec = load_recipe(_write(tmp_path, "name: c\ndomain: generic\ndata:\n  source: cifar10\n"))
    assert spec.description == ""
    assert spec.longtail == LongtailSettings()
    assert spec.data.split == SplitSettings()


def test_flatten_nested_settings():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


# --- unknown keys -----------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    path = _write(tmp_path, _merge(BASE, {"colour_space": "rgb"}))
    message = _error(path)
    assert "unknown key 'colour_space'" in message


def test_misspelled_top_level_key_suggests(tmp_path):
    path = _write(tmp_path, _merge(BASE, {"description": ..., "descripton": "x"}))
    message = _error(path)
    assert "'descripton'" in message
    assert "did you mean 'description'" in message


def test_misspelled_nested_key_names_dotted_path_and_suggests(tmp_path):
    path = _write(tmp_path, _merge(BASE, {"longtail": {"imbalance": ..., "imbalanse": 10}}))
    message = _error(path)
    assert "longtail.imbalanse" in message
    assert "did you mean 'imbalance'" in message


def test_misspelled_deeply_nested_key(tmp_path):
    path = _write(tmp_path, _merge(BASE, {"data": {"split": {"val_fracton": 0.1}}}))
    message = _error(path)
    assert "data.split.val_fracton" in message
    assert "did you mean 'val_fraction'" in message


# --- wrong types ------------------------------------------------------------------------------


WRONG_TYPES = {
    "str-for-int": ({"data": {"split": {"seed": "zero"}}}, "data.split.seed"),
    "str-for-optional-int": ({"longtail": {"max_per_class": "ten"}}, "longtail.max_per_class"),
    "str-for-float": ({"longtail": {"imbalance": "100"}}, "longtail.imbalance"),
    "bool-for-int": ({"data": {"split": {"seed": True}}}, "data.split.seed"),
    "bool-for-optional-int": ({"data": {"image_size": True}}, "data.image_size"),
    "bool-for-float": ({"data": {"split": {"val_fraction": True}}}, "data.split.val_fraction"),
    "bool-for-channels": ({"data": {"channels": True}}, "data.channels"),
    "float-for-channels": ({"data": {"channels": 3.0}}, "data.channels"),
    "float-for-int": ({"longtail": {"seed": 1.5}}, "longtail.seed"),
    "int-for-bool": ({"longtail": {"enabled": 1}}, "longtail.enabled"),
    "str-for-bool": ({"longtail": {"enabled": "yes"}}, "longtail.enabled"),
    "int-for-str": ({"name": 5}, "name"),
    "null-for-str": ({"description": None}, "description"),
    "list-for-mapping": ({"longtail": [1, 2]}, "longtail"),
    "str-for-mapping": ({"data": "cifar10"}, "data"),
    "list-for-nested-mapping": ({"data": {"split": [0.1, 0.2]}}, "data.split"),
    "str-for-list": ({"data": {"classes": "a,b"}}, "data.classes"),
    "int-in-list-of-str": ({"data": {"classes": ["a", 2]}}, "data.classes[1]"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_wrong_type_names_the_key(tmp_path, case):
    changes, key = WRONG_TYPES[case]
    path = _write(tmp_path, _merge(BASE, changes))
    message = _error(path)
    assert key in message


def test_top_level_list_refused(tmp_path):
    message = _error(_write(tmp_path, "- name: mine\n- domain: medical\n"))
    assert "top level must be a mapping" in message


# --- malformed, empty, missing ----------------------------------------------------------------


def test_malformed_yaml(tmp_path):
    message = _error(_write(tmp_path, "name: [unclosed\ndomain: medical\n"))
    assert "malformed YAML" in message


def test_malformed_yaml_tab_indent_gives_line(tmp_path):
    message = _error(_write(tmp_path, "name: mine\ndata:\n\tsource: cifar10\n"))
    assert "malformed YAML at line 3" in message


def test_duplicate_key_is_refused_not_silently_overwritten(tmp_path):
    message = _error(_write(tmp_path, "name: first\nlongtail: {imbalance: 10}\nname: second\ndomain: medical\n"))
    assert "malformed YAML at line 3" in message and "duplicate key 'name'" in message


def test_python_tags_are_not_constructed(tmp_path):
    message = _error(_write(tmp_path, "name: !!python/object/apply:os.system ['true']\ndomain: medical\n"))
    assert "malformed YAML" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    assert "recipe is empty" in _error(_write(tmp_path, text))


@pytest.mark.parametrize("key", ["data", "name", "domain"])
def test_missing_required_key(tmp_path, key):
    message = _error(_write(tmp_path, _merge(BASE, {key: ...})))
    assert f"missing required key '{key}'" in message


def test_missing_required_nested_key(tmp_path):
    message = _error(_write(tmp_path, _merge(BASE, {"data": {"source": ...}})))
    assert "missing required key 'data.source'" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = _error(path)
    assert "not found" in message


def test_undecodable_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert "cannot read recipe" in _error(path)


# --- values refused by the dataclasses --------------------------------------------------------


INVALID_VALUES = {
    "imbalance-below-1": ({"longtail": {"imbalance": 0.5}}, "longtail.imbalance"),
    "max-per-class-zero": ({"longtail": {"max_per_class": 0}}, "longtail.max_per_class"),
    "fractions-sum-over-1": ({"data": {"split": {"val_fraction": 0.7, "test_fraction": 0.5}}}, "val_fraction + "),
    "fraction-negative": ({"data": {"split": {"val_fraction": -0.1}}}, "split.val_fraction"),
    "fraction-one": ({"data": {"split": {"test_fraction": 1.0}}}, "split.test_fraction"),
    "imagefolder-without-path": ({"data": {"path": ...}}, "data.path"),
    "npz-without-path": ({"data": {"source": "npz", "path": ...}}, "data.path"),
    "duplicate-classes": ({"data": {"classes": ["a", "b", "a"]}}, "data.classes"),
    "image-size-too-small": ({"data": {"image_size": 4}}, "data.image_size"),
    "channels-not-1-or-3": ({"data": {"channels": 4}}, "data.channels"),
    "domain-not-allowed": ({"domain": "space"}, "domain"),
    "bad-name": ({"name": "My Dataset"}, "name"),
}


@pytest.mark.parametrize("case", list(INVALID_VALUES))
def test_invalid_value_refused(tmp_path, case):
    changes, fragment = INVALID_VALUES[case]
    message = _error(_write(tmp_path, _merge(BASE, changes)))
    assert fragment in message


def test_domain_error_lists_allowed_values(tmp_path):
    message = _error(_write(tmp_path, _merge(BASE, {"domain": "space"})))
    assert "'space'" in message
    for domain in ("medical", "satellite", "driving", "generic"):
        assert domain in message


# --- the command line -------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    assert SYNTHDATA.is_file(), f"console script not found at {SYNTHDATA}"
    return subprocess.run([str(SYNTHDATA), *args], capture_output=True, text=True, timeout=120)


def test_cli_recipe_error_is_one_line(tmp_path):
    path = _write(tmp_path, _merge(BASE, {"longtail": {"imbalance": ..., "imbalanse": 10}}), name="bad-recipe.yaml")
    result = _cli("recipe", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].strip()
    assert lines[0].startswith("error:")
    assert "bad-recipe.yaml" in lines[0]
    assert "longtail.imbalanse" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_recipe_ok(tmp_path):
    result = _cli("recipe", *map(str, RECIPES[:2]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == 2
