"""Unpickle data files that only hold numpy arrays, lists, dicts and strings (the CIFAR batches).

``pickle.load`` runs whatever callable a file names: a downloaded pickle is code. The unpickler
here resolves only numpy's array reconstruction names and refuses every other global, with one
line naming the file and the global, before anything is called. (Checked: numpy's
``np.load(allow_pickle=False)`` refuses object pickles outright, and torchvision's CIFAR reader
calls plain ``pickle.load``; neither reads these batches safely.)
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from synthdata.errors import DataError

# The one function numpy pickles ndarrays through; taken from numpy itself, so the name it is
# reached by (numpy.core.multiarray before numpy 2, numpy._core.multiarray since) does not matter.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """Resolves only the globals of :data:`_ALLOWED`; ``where`` names the file in refusals."""

    def __init__(self, data: bytes, where: str):
        # latin1 turns Python 2 byte strings (the batches' keys and the arrays' raw bytes) into
        # text that numpy turns back into the same bytes; torchvision reads them the same way.
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise DataError(
                f"{self.where}: the pickle names {module}.{name}, which an array file never needs; refused"
            )
        return allowed


def load_arrays(data: bytes, where: str) -> Any:
    """The object pickled in ``data``, unpickled by :class:`ArrayUnpickler`; a malformed pickle is
    a one-line :class:`DataError` naming ``where``."""
    try:
        return ArrayUnpickler(data, where).load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed pickle can raise nearly anything
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{where}: not a readable pickle ({reason})") from None
