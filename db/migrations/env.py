"""Alembic environment: runs on the connection handed over by ``db.storage.migrate``.

On SQLite, foreign keys are switched off while migrations run: a batch operation rebuilds a table
(copy, DROP, rename), and with foreign keys on that DROP deletes the rows of every table that refers
to it with ON DELETE CASCADE (all metrics and artifacts when ``runs`` is rebuilt). The migrations run
in one transaction, ``PRAGMA foreign_key_check`` must find nothing (when a revision was applied)
before it commits, and foreign keys are switched back on afterwards.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from db.models import Base

config = context.config
target_metadata = Base.metadata


def _sqlite_foreign_keys(connection: sa.Connection, on: bool) -> None:
    # Through the DBAPI connection: SQLAlchemy would BEGIN first, and the pragma is a no-op in a transaction.
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cur: Any = dbapi.cursor()
    try:
        cur.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        cur.execute("PRAGMA foreign_keys")
        state = cur.fetchone()
    finally:
        cur.close()
    if state is None or bool(state[0]) != on:
        raise RuntimeError(f"could not switch SQLite foreign keys {'on' if on else 'off'} for the migration")


def _run(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection.in_transaction():
        # Alembic commits on SQLite anyway (after each revision); end the caller's transaction
        # now so that foreign keys can be switched off.
        connection.commit()
    _sqlite_foreign_keys(connection, False)
    try:
        # transactional_ddl: all revisions and the check below commit together or not at all.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          transactional_ddl=True)
        with context.begin_transaction():
            migration = context.get_context()
            before = migration.get_current_heads()
            context.run_migrations()
            # Only after a change: the check reads every table, too slow for each process start.
            if migration.get_current_heads() == before:
                return
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration would leave {len(broken)} row(s) whose foreign key points "
                                   f"nowhere, e.g. {tuple(broken[0])}; nothing was changed")
    finally:
        if connection.in_transaction():
            connection.rollback()
        try:
            _sqlite_foreign_keys(connection, True)
        except Exception:
            connection.invalidate()  # never hand a connection without foreign keys back to the pool
            raise


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # `alembic` CLI use: build an engine from the URL in the config.
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


run_migrations_online()
