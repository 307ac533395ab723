"""Fault points: where a run can be made to die on purpose, to prove that a kill loses nothing.

Every progress advance and every rename that publishes a file or folder passes a fault point.
``SYNTHDATA_FAULT_AT=N`` makes the process SIGKILL itself at the Nth point it reaches (no
clean-up handler runs: the same as ``kill -9`` or the OOM killer). ``SYNTHDATA_FAULT_COUNT=FILE``
makes a run write how many points it passed when it exits, so a schedule can choose among them.
Both are unset in normal use, where a point costs one lookup.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path

AT_ENV = "SYNTHDATA_FAULT_AT"
COUNT_ENV = "SYNTHDATA_FAULT_COUNT"

_passed = 0


def point() -> None:
    """A place where a kill may land; dies here when it is the chosen one."""
    global _passed
    if AT_ENV not in os.environ and COUNT_ENV not in os.environ:
        return
    _passed += 1
    if os.environ.get(AT_ENV) == str(_passed):
        os.kill(os.getpid(), signal.SIGKILL)


@atexit.register
def _record() -> None:
    target = os.environ.get(COUNT_ENV)
    if target:
        Path(target).write_text(f"{_passed}\n")
