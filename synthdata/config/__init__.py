"""Typed recipe configuration: YAML read with ``yaml.safe_load`` into frozen dataclasses."""

from synthdata.config.recipe import (
    DataSettings,
    LongtailSettings,
    Recipe,
    SplitSettings,
    load_recipe,
)

__all__ = ["DataSettings", "LongtailSettings", "Recipe", "SplitSettings", "load_recipe"]
