"""Typed recipe configuration: YAML read with ``yaml.safe_load`` into frozen dataclasses
(``recipe``), each library's settings assembled by the strict builder of :mod:`synthdata.settings`."""
