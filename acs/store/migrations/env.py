"""Alembic's environment for the acs store, driven from ``acs.store.engine.upgrade``.

The caller passes an open connection in ``config.attributes["connection"]``; without
one (the ``alembic`` command line), the database comes from ``$ACS_DATABASE_URL``.
SQLite alters tables by copying them ("batch mode"), so every revision can use
``op.batch_alter_table`` and run on both backends.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from acs.store.engine import create_engine, database_url
from acs.store.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``), for DBAs who review it."""
    url = database_url(context.config.get_main_option("sqlalchemy.url"))
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := context.config.attributes.get("connection")) is not None:
    run(given)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()
