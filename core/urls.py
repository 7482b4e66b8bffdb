"""URLs of the servers riskgate talks to (PostgreSQL, an MLflow tracking server): shown without their secrets.

A URL may carry a password (``postgresql://user:password@host/db``, ``https://user:password@mlflow``): it
never reaches a message or a log line as it is, only through :func:`redact`, and a third party's message that
may quote it only through :func:`scrub`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

#: What a password is replaced with.
HIDDEN: Final = "***"


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{HIDDEN}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def scrub(text: str, url: str) -> str:
    """``text`` (a library's message that may quote ``url``) with ``url``'s password replaced by ``***``."""
    password = urlsplit(url).password
    return text.replace(url, redact(url)).replace(password, HIDDEN) if password else text
