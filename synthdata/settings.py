"""Build dataclasses from plain YAML data, refusing unknown keys and wrong types; the one rule
for numbers in settings.

Checked: pydantic would do this too, but it is not in the stack and dataclasses are what the
rest of the code (and peft/diffusers configs) use; the rules needed here fit in one page.

Numbers: every settings dataclass calls :func:`check_numbers` from ``__post_init__``, so a value
is checked whether it came from a recipe or from a command-line override made with
``dataclasses.replace``. Every float must be finite, and every number must lie in the range
declared beside its field, in its metadata (a numeric field without one is a bug).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from synthdata.errors import RecipeError

T = typing.TypeVar("T")

SEED_RANGE = "[0, 4294967295]"
"""Seeds (``"range": "seed"``): what numpy and every ``torch.Generator`` take, on every platform."""

_RANGE = re.compile(r"^([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])$")


class SettingError(RecipeError, ValueError):
    """A setting outside its rule; ``name`` is its field, so a recipe error can give the key path.

    A :class:`RecipeError`, so a command-line override that breaks the rule is one error line
    wherever it is built; a ``ValueError``, so it is caught where other invalid settings are."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"'{name}' {problem}")


@functools.cache
def _bounds(declared: str) -> tuple[str, Callable[[float], bool]]:
    """``"[1, 1e7]"``, ``"(0, 1)"``, ... (or ``"seed"``) -> (the interval as written, its test)."""
    written = SEED_RANGE if declared == "seed" else declared
    match = _RANGE.match(written)
    if match is None:
        raise TypeError(f"malformed range {declared!r}: write it as [low, high], (low, high], ...")
    opening, low, high, closing = match.group(1), float(match.group(2)), float(match.group(3)), match.group(4)
    above = (lambda v: v > low) if opening == "(" else (lambda v: v >= low)
    below = (lambda v: v < high) if closing == ")" else (lambda v: v <= high)
    return written, lambda v: above(v) and below(v)


def check_numbers(settings: Any) -> None:
    """Raise :class:`SettingError` unless every number of the dataclass ``settings`` (alone or in
    a list; ``None`` passes) is finite and inside the range its field declares.

    A field declares its range in its metadata, ``field(default=..., metadata={"range": "[1, 1e7]"})``,
    brackets open or closed as in maths; a number in a field that declares none is a bug (a
    ``RuntimeError``, which keeps its traceback).
    """
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if "range" not in field.metadata:
                raise RuntimeError(f"{type(settings).__name__}.{field.name} holds a number but declares no range")
            written, admits = _bounds(field.metadata["range"])
            if isinstance(item, float) and not math.isfinite(item):  # an int is finite and may exceed any float
                raise SettingError(field.name, f"must be a finite number, got {item}")
            if not admits(item):
                raise SettingError(field.name, f"must be in {written}, got {item!r}")


@functools.cache
def choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """The allowed values of each field of the dataclass ``cls`` whose type is a ``Literal``: the
    one place they are spelled, for the recipe check, :func:`check_choices` and the CLI."""
    hints = get_type_hints(cls)
    return {f.name: get_args(hints[f.name]) for f in dataclasses.fields(cls) if get_origin(hints[f.name]) is Literal}


def _one_of(value: Any, allowed: tuple[Any, ...]) -> bool:
    # Compare types too: YAML's `true` == 1 and 3.0 == 3 in Python, but neither is a channel count.
    return any(type(value) is type(a) and value == a for a in allowed)


def check_choices(settings: Any) -> None:
    """Raise :class:`SettingError` unless every ``Literal`` field of the dataclass ``settings``
    holds one of its values, so settings made in code or by ``dataclasses.replace`` obey the rule
    :func:`build` applies to a recipe (with the same words)."""
    for name, allowed in choices(type(settings)).items():
        value = getattr(settings, name)
        if not _one_of(value, allowed):
            raise SettingError(name, f"must be one of {list(allowed)}, got {value!r}")


def build(cls: type[T], data: Any, *, source: Path | str, where: str = "") -> T:
    """Return ``cls(**data)`` after checking every key and value against the field types.

    ``source`` is the file the data came from and ``where`` the dotted key path, both used
    in the error message so the user knows exactly what to fix.
    """
    label = where or "top level"
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {label} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    for key in data:
        if key not in fields:
            dotted = f"{where}.{key}" if where else str(key)
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{source}: unknown key '{dotted}'{hint}")
    values = {}
    for name, field in fields.items():
        dotted = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _convert(hints[name], data[name], source=source, where=dotted)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise RecipeError(f"{source}: missing required key '{dotted}'")
    try:
        return cls(**values)
    except SettingError as exc:
        dotted = f"{where}.{exc.name}" if where else exc.name
        raise RecipeError(f"{source}: '{dotted}' {exc.problem}") from None
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"{source}: {label}: {exc}") from None


def _convert(tp: Any, value: Any, *, source: Path | str, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, source=source, where=where)
            except RecipeError as exc:
                errors.append(str(exc))
        raise RecipeError(errors[0] if len(errors) == 1 else f"{source}: '{where}' has an invalid value {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if not _one_of(value, allowed):
            raise RecipeError(f"{source}: '{where}' must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise RecipeError(f"{source}: '{where}' must be a list, got {type(value).__name__}")
        (item_type, *_) = get_args(tp) or (Any,)
        items = [_convert(item_type, v, source=source, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: '{where}' must be a mapping, got {type(value).__name__}")
        key_type, value_type = get_args(tp) or (Any, Any)
        return {
            _convert(key_type, k, source=source, where=f"{where} key"): _convert(
                value_type, v, source=source, where=f"{where}.{k}"
            )
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source=source, where=where)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{source}: '{where}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{source}: '{where}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{source}: '{where}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(f"{source}: '{where}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported field type {tp!r} at {where}")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; used to log nested settings as MLflow params."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
