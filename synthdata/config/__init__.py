"""Typed recipe configuration: YAML read with ``yaml.safe_load`` into frozen dataclasses
(``recipe``), by the strict builder and the one rule for numbers (``strict``)."""
