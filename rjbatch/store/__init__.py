"""Stores: where jobs, slices and servers live. ``open_store(url)`` picks the backend."""

from __future__ import annotations

from rjbatch.errors import StoreError
from rjbatch.store.protocol import Store


def open_store(url: str) -> Store:
    """A store for a database URL: ``sqlite:///...``, ``postgresql://...``, ``mongodb://...``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from rjbatch.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from rjbatch.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(f"the PostgreSQL store is not available: {exc}") from None
        return PostgresStore(url)
    if scheme in ("mongodb", "mongodb+srv"):
        try:
            from rjbatch.store.mongo import MongoStore
        except ImportError as exc:
            raise StoreError(f"the MongoDB store is not available: {exc}") from None
        return MongoStore(url)
    raise StoreError(f"unknown database URL scheme {scheme!r} in {url!r} (sqlite, postgresql, mongodb)")


__all__ = ["Store", "open_store"]
