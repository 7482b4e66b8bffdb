"""API keys (stored hashed, with scopes) and keyed pseudonyms for ids in logs and the decision log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.settings import DEV_API_KEYS, DEV_PSEUDONYM_SECRET, ApiKey, Settings
from serving.errors import ConfigurationError, ForbiddenError, UnauthenticatedError

API_KEY_HEADER = "X-API-Key"


class Scope(StrEnum):
    SCORE = "score"  # the billing system: score, outcomes, read decisions
    ADMIN = "admin"  # reload models, erase accounts


@dataclass(frozen=True)
class Principal:
    """Who is calling: the configured key's name and scopes."""

    name: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    """The stored form of an API key: hex SHA-256 (keys are random, high-entropy tokens)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and its hash, for ``riskgate api-key``."""
    key = "rg_" + secrets.token_urlsafe(32)
    return key, hash_key(key)


class KeyRing:
    """Looks up a presented key by its hash and checks scopes; errors reveal nothing about other keys."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_hash = {key.sha256: Principal(key.name, frozenset(key.scopes)) for key in keys}

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise UnauthenticatedError(f"missing API key: send it in the {API_KEY_HEADER} header")
        digest = hash_key(presented)
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        raise UnauthenticatedError("invalid API key")

    @staticmethod
    def authorize(principal: Principal, scope: Scope) -> None:
        if scope.value not in principal.scopes:
            raise ForbiddenError(f"this API key lacks the '{scope.value}' scope")

    def check(self, presented: str | None, scope: Scope) -> Principal:
        """The caller presenting ``presented`` if its key has ``scope``: 401 (no or unknown key) or 403 (a
        known key without the scope) otherwise. Every route's authentication goes through here."""
        principal = self.authenticate(presented)
        self.authorize(principal, scope)
        return principal


def check_production_secrets(settings: Settings) -> None:
    """Refuse to run outside development with a development key or the development pseudonym secret."""
    if settings.environment == "development":
        return
    dev_hashes = {key.sha256 for key in DEV_API_KEYS}
    if any(key.sha256 in dev_hashes for key in settings.api_keys):
        raise ConfigurationError(
            f"environment is {settings.environment!r} but RISKGATE_API_KEYS holds a development key: "
            "create keys with `riskgate api-key NAME --scope score` and set RISKGATE_API_KEYS"
        )
    if settings.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET:
        raise ConfigurationError(
            f"environment is {settings.environment!r} but RISKGATE_PSEUDONYM_SECRET is the development "
            "default: set it to a long random secret (e.g. the output of `openssl rand -hex 32`)"
        )
    if not any(Scope.ADMIN.value in key.scopes for key in settings.api_keys):
        raise ConfigurationError("no API key has the 'admin' scope: reloads and erasure would be impossible")
