"""How key values appear in telemetry: off, hashed (the default) or plain.

Keys may be personal data (user ids, e-mail addresses), so spans and logs carry a
salted hash unless an operator opts into plain values; hot-partition metrics always
hash. Owns only the rendering of one DynamoDB AttributeValue; must not import the
backends, gRPC or OpenTelemetry.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .secrets import SecretString

KEY_VALUE_MODES = ("off", "hashed", "plain")


def plain_value(value: dict[str, Any]) -> str:
    """A key AttributeValue (S, N or B) as text; B as base64."""
    for raw in value.values():
        if isinstance(raw, bytes | bytearray):
            return base64.b64encode(bytes(raw)).decode("ascii")
        return str(raw)
    return ""


def _bytes_of(raw: Any) -> bytes:
    return bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()


class KeyRenderer:
    """Renders key values for span attributes and log fields, and hashes them for metrics."""

    def __init__(self, mode: str = "hashed", salt: SecretString | None = None) -> None:
        if mode not in KEY_VALUE_MODES:
            raise ValueError(f"key value mode must be one of {KEY_VALUE_MODES}, not {mode!r}")
        self.mode = mode
        # blake2b takes a key of at most 64 bytes; a longer salt is reduced to one first.
        salt_bytes = (salt.reveal() if salt else "").encode()
        salt_key = salt_bytes if len(salt_bytes) <= 64 else hashlib.sha256(salt_bytes).digest()
        # Keying blake2b compresses a whole block; copying a keyed one is cheaper (hash() runs per call).
        self._keyed = hashlib.blake2b(digest_size=8, key=salt_key)

    def hash(self, value: dict[str, Any]) -> str:
        """16 hex digits, stable across processes that share the salt (so replicas correlate)."""
        digest = self._keyed.copy()
        for letter, raw in sorted(value.items()):
            digest.update(b"%s:%s" % (letter.encode(), _bytes_of(raw)))
        return digest.hexdigest()

    def render(self, value: dict[str, Any] | None) -> str | None:
        """The value as telemetry may show it, or None when key values are off."""
        if value is None or self.mode == "off":
            return None
        if self.mode == "plain":
            return plain_value(value)
        return self.hash(value)
