"""TimescaleDB only: the tenant views over the hypertable and the continuous aggregates lose `security_barrier`.

A barrier view is planned as a closed subquery, which kept TimescaleDB from ordered chunk scans under
`ORDER BY ts LIMIT`: each page of a CSV export sorted the rest of its range. Why this is safe is in
`app/services/storage/timescale.py`. Plain PostgreSQL (row-level security on tables) is untouched.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from alembic import op
from sqlalchemy import text

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

VIEWS = ('telemetry', 'telemetry_1m', 'telemetry_1h')
IS_VIEW = "SELECT relkind = 'v' FROM pg_class WHERE oid = to_regclass(:name)"


def _set_barrier(value: bool) -> None:
    connection = op.get_bind()
    for view in VIEWS:
        if connection.scalar(text(IS_VIEW), {'name': f'public.{view}'}):
            op.execute(f'ALTER VIEW public.{view} SET (security_barrier = {str(value).lower()})')


def upgrade() -> None:
    _set_barrier(False)


def downgrade() -> None:
    _set_barrier(True)
