"""Files the security layer reads at startup and again whenever they change, without a restart.

WatchedFile parses one file (the policy, the static tokens, a JWKS) into a value.
check() notices a change by the file's stat signature (inode, size, mtime), so
files replaced atomically, as Kubernetes does with mounted secrets and config
maps, are picked up; a new version that does not parse is refused and the last
good one stays in force, so a typo cannot open or close the gateway by accident.
At startup there is no last good version: the error stops the gateway. Owns no
timer (app.py polls) and must not import gRPC.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

Signature = tuple[int, int, int, int]


def first_line(error: Exception) -> str:
    """An error's first line (a parser's message can quote the file at length), or its type."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class SecurityConfigError(RuntimeError):
    """A security file or setting is unusable; the message names the file and what is wrong (no secret)."""


def signature_of(path: str) -> Signature:
    stat = os.stat(path)
    return (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns)


def read_file(path: str, what: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as error:
        raise SecurityConfigError(f"{what} {path}: cannot be read ({error.strerror or error})") from None


class WatchedFile(Generic[T]):
    """A file parsed into `value`; check() parses it again when it changed."""

    def __init__(self, path: str, what: str, parse: Callable[[bytes], T]) -> None:
        self.path = path
        self.what = what
        self._parse = parse
        self._lock = threading.Lock()
        self.generation = 0
        """How many versions have been in force (1 after startup); tests wait on it."""
        self._signature: Signature | None = None
        self.value: T = self._load()

    def _load(self) -> T:
        try:
            signature = signature_of(self.path)
        except OSError as error:
            raise SecurityConfigError(f"{self.what} {self.path}: cannot be read ({error.strerror})") from None
        value = self._parse(read_file(self.path, self.what))
        self._signature = signature
        self.generation += 1
        return value

    def check(self) -> bool:
        """Re-reads the file if it changed; True when a new version came into force."""
        with self._lock:
            try:
                if signature_of(self.path) == self._signature:
                    return False
            except OSError as error:
                log.error(
                    "%s %s is gone (%s); keeping the version in force", self.what, self.path, error.strerror
                )
                return False
            try:
                value = self._load()
            except SecurityConfigError as error:
                # Remember the broken version, so it is reported once and not at every check.
                try:
                    self._signature = signature_of(self.path)
                except OSError:
                    self._signature = None
                log.error("%s; keeping the version in force", error)
                return False
            self.value = value
            log.info("%s %s reloaded", self.what, self.path, extra={"generation": self.generation})
            return True
