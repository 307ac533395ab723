"""Where names become paths, and what an output may not be: each rule lives here and only here.

- :func:`path_component` is the one way a name taken from the data or the command line (a class
  name, a recipe name) becomes a folder or file name. A name that cannot be one plain component
  is *refused*, never mapped to a safe spelling: the manifest, the card, the PNG text chunks and
  every figure then show the same name the folders do, and the user renames the class once, at
  the source, instead of meeting two spellings of it downstream.
- :func:`recipe_name` is the rule for a recipe's name (it names ``datasets/NAME``,
  ``reports/NAME`` and the MLflow runs, whose filters quote it).
- :func:`guard_outputs` runs before a command does any work: an output may not be, contain or lie
  inside one of the command's inputs, another of its outputs or the working folder, may not be
  ``/``, and a folder output may not be an existing file (nor a file output an existing folder).
  Outputs are replaced whole by a rename (``synthdata/atomic.py``), so any overlap would destroy
  what the command reads, or the place it runs from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

from synthdata.errors import DataError, SynthdataError

MAX_COMPONENT_BYTES = 255
"""The longest file name ext4, XFS, Btrfs, tmpfs and APFS accept (``NAME_MAX``), in UTF-8 bytes."""

RECIPE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
"""A recipe's name, whole (``fullmatch``): lower-case letters, digits, ``-`` and ``_``."""


def shown(text: str) -> str:
    """``text`` for an error line: as it is when printable, else escaped (a newline in a name
    would otherwise split the line, a NUL or an escape sequence garble the terminal)."""
    return text if text.isprintable() else repr(text)[1:-1]


def _problem(name: str) -> str | None:
    """Why ``name`` cannot be one plain folder or file name, or ``None`` when it can."""
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator ('/' or '\\')"
    if name.startswith("."):
        # '.' and '..' name this folder and its parent; any other leading dot hides the folder
        # (the imagefolder reader skips hidden folders, so the class would vanish on a re-read).
        return "it starts with '.'"
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        return f"it contains the control character {bad!r}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # undecodable bytes in a folder name arrive as lone surrogates
        return "it is not valid UTF-8 text"
    if size > MAX_COMPONENT_BYTES:
        return f"it is {size} bytes long (at most {MAX_COMPONENT_BYTES})"
    return None


def path_component(name: str, origin: str | Path, what: str = "class name") -> str:
    """``name`` unchanged when it can be one folder or file name everywhere the data goes (POSIX
    file systems, zip and tar members, Windows readers of both); otherwise a :class:`DataError`
    naming the name, the file it came from (``origin``) and the reason. Refused: an empty name,
    ``/`` or ``\\``, a leading ``.`` (so ``.`` and ``..``), control characters (NUL and newline
    among them, and the Unicode line and paragraph separators), text that is not UTF-8 and names
    over :data:`MAX_COMPONENT_BYTES` bytes."""
    problem = _problem(name)
    if problem is not None:
        raise DataError(f"{shown(str(origin))}: {what} {name!r} cannot be a folder name: {problem}")
    return name


def recipe_name(name: str, origin: str | Path = "recipe name") -> str:
    """``name`` when it is a valid recipe name (:data:`RECIPE_NAME`); otherwise a
    :class:`SynthdataError` naming it."""
    if not RECIPE_NAME.fullmatch(name):
        raise SynthdataError(
            f"{shown(str(origin))}: {name!r} is not a recipe name (lower-case letters, digits, '-' or '_')"
        )
    return name


def _relation(path: Path, other: Path) -> str | None:
    """How resolved ``path`` stands to resolved ``other``: "is", "contains", "lies inside" or ``None``."""
    if path == other:
        return "is"
    if other.is_relative_to(path):
        return "contains"
    if path.is_relative_to(other):
        return "lies inside"
    return None


def guard_outputs(
    inputs: Mapping[str, Path | str | Sequence[Path] | None],
    folders: Mapping[str, Path | None] | None = None,
    files: Mapping[str, Path | None] | None = None,
) -> None:
    """Refuse, with one :class:`SynthdataError` line naming both paths, an output of a command
    that would destroy what the command reads or where it runs. ``folders`` and ``files`` map an
    option (``"--out"``) to the folder or file it writes, ``inputs`` an option or recipe key
    (``"--dataset"``, ``"data.path"``) to what it reads (a path or a list of them); ``None``
    entries are left out. Paths are compared with symbolic links resolved. Checked in order,
    first problem wins: ``/``; an
    existing file where a folder is written (it would be moved aside as ``.old-<name>`` and
    wedge every rerun) or an existing folder where a file is written; the working folder, or an
    output holding it; an input that the output is, contains or lies inside; another output."""
    outputs = [(option, Path(path), True) for option, path in (folders or {}).items() if path is not None]
    outputs += [(option, Path(path), False) for option, path in (files or {}).items() if path is not None]
    sources = [
        (option, Path(path))
        for option, paths in inputs.items()
        if paths is not None
        for path in (paths if isinstance(paths, (list, tuple)) else [paths])
    ]
    cwd = Path.cwd().resolve()
    for index, (option, path, is_folder) in enumerate(outputs):
        real, named = path.resolve(), _named(option, path)
        if real == Path(real.anchor):
            raise SynthdataError(f"{named} is the root folder {real.anchor}; choose a folder below it")
        if is_folder and path.exists() and not path.is_dir():
            raise SynthdataError(f"{named} exists and is not a folder; remove it or choose another name")
        if not is_folder and path.is_dir():
            raise SynthdataError(f"{named} is an existing folder; give a file name")
        relation = _relation(real, cwd)
        if relation in ("is", "contains"):
            raise SynthdataError(f"{named} {relation} the working folder {shown(str(cwd))}; choose a folder inside it")
        for name, source in sources:
            relation = _relation(real, source.resolve())
            if relation is not None:
                raise SynthdataError(
                    f"{named} {relation} {_named(name, source)}, an input of this command; "
                    "choose an output apart from its inputs"
                )
        for name, other, _ in outputs[index + 1 :]:
            relation = _relation(real, other.resolve())
            if relation is not None:
                raise SynthdataError(f"{named} {relation} {_named(name, other)}; two outputs may not overlap")


def _named(option: str, path: Path) -> str:
    return f"{option} {shown(str(path))}"
