"""The store: SQLAlchemy Core tables, engines and Alembic migrations (SQLite and PostgreSQL).

``Connection`` and ``Engine`` are named here for the layers that reach the database only through
the store's functions (``acs.session``): they hold one and pass it on, and import no SQLAlchemy.
The ``sessions`` table is ``acs.store.schema``'s; ``acs.store.sessions`` is what is done with it.
"""

from sqlalchemy.engine import Connection, Engine

from acs.store.engine import (
    DEFAULT_URL,
    StoreError,
    Upgrade,
    connect,
    create_engine,
    current_revision,
    database_url,
    ensure_schema,
    head_revision,
    show_url,
    transaction,
    upgrade,
)
from acs.store.schema import (
    UTCDateTime,
    device_tags,
    devices,
    events,
    metadata,
    parameters,
    policies,
    tasks,
    utcnow,
)

__all__ = [
    "DEFAULT_URL",
    "Connection",
    "Engine",
    "StoreError",
    "UTCDateTime",
    "Upgrade",
    "connect",
    "create_engine",
    "current_revision",
    "database_url",
    "device_tags",
    "devices",
    "ensure_schema",
    "events",
    "head_revision",
    "metadata",
    "parameters",
    "policies",
    "show_url",
    "tasks",
    "transaction",
    "upgrade",
    "utcnow",
]
