"""Run and sweep ids are never reused: AUTOINCREMENT on SQLite (PostgreSQL sequences never go back).

Without AUTOINCREMENT SQLite hands out max(id) + 1, so deleting the newest run and creating another
gave the new run the deleted one's id, and exports or notes naming it silently pointed elsewhere.
SQLite cannot add AUTOINCREMENT in place: the tables are rebuilt (with foreign keys off, see env.py).
The counter starts at the highest id present; ids deleted before this migration cannot be known.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 18:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ('runs', 'sweeps')


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return  # other databases draw ids from sequences, which never go back
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
