"""Online stores: where the online engine keeps per-entity state. One protocol, several backends."""

from features.stores.base import OnlineStore, StoreError, Transaction

__all__ = ["OnlineStore", "StoreError", "Transaction"]
