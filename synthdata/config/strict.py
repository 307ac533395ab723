"""Build dataclasses from plain YAML data, refusing unknown keys and wrong types.

Checked: pydantic would do this too, but it is not in the stack and dataclasses are what the
rest of the code (and peft/diffusers configs) use; the rules needed here fit in one page.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from synthdata.errors import RecipeError

T = typing.TypeVar("T")


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
        # Compare types too: YAML's `true` == 1 and 3.0 == 3 in Python, but neither is a channel count.
        if not any(type(value) is type(a) and value == a for a in allowed):
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
        return {_convert(key_type, k, source=source, where=f"{where} key"): _convert(value_type, v, source=source, where=f"{where}.{k}")
                for k, v in value.items()}  # fmt: skip
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
