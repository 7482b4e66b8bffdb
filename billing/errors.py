"""The billing checks' errors."""

from __future__ import annotations

from core.errors import InputError


class BillingError(InputError):
    """Base of the billing checks' errors: something the provider supplied cannot be used."""


class CatalogueError(BillingError):
    """The price catalogue cannot be read: the message names the file, the line and what is wrong."""
