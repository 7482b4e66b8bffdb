"""Pseudonyms of the ids the decision log keeps: keyed, stable, unlinkable without the secret."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymiser:
    """Keyed HMAC-SHA256 pseudonyms: stable per id, unlinkable without the secret, short enough for logs."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:24]
