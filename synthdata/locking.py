"""One writer per output folder: an advisory lock file beside the folder.

``.<name>.lock`` next to ``<name>`` holds an exclusive ``flock`` for as long as the writer runs
and records who holds it (pid, host, start time, command). A second writer is refused with a
message naming the holder. The kernel drops a ``flock`` when its process dies, so a lock left by
a killed writer is found free, reported as stale and taken over: no manual clean-up.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from synthdata.errors import SynthdataError


class LockedError(SynthdataError):
    """Another live process is writing the same output folder."""


def lock_path(target: Path) -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def _holder(text: str) -> str:
    try:
        record = json.loads(text)
        return f"pid {record['pid']} on {record['host']} since {record['since']} ({record['command']})"
    except (ValueError, KeyError, TypeError):
        return "an unknown process"


class FolderLock:
    """``with FolderLock(out): ...`` — exclusive right to write ``out`` (and its staging)."""

    def __init__(self, target: Path | str):
        self.target = Path(target)
        self.path = lock_path(self.target)
        self.stale: str | None = None
        """The holder recorded by a dead writer whose lock was cleared, if any."""
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                raise LockedError(
                    f"{self.target} is being written by {_holder(text)}; wait for it or stop it "
                    f"(lock file {self.path})"
                ) from None
            # The previous holder may have removed the file between our open and our flock:
            # then we hold a lock on a deleted inode, so start again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if previous:
            self.stale = _holder(previous)
            print(f"cleared a stale lock on {self.target} left by {self.stale}", file=sys.stderr)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
