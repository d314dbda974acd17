"""Shared pieces of the hand-written migrations."""

from alembic import op
from sqlalchemy import text

from app.services.storage.timescale import TENANT_FILTER


def run_script(script: str) -> None:
    """Run `;`+newline separated statements one by one (asyncpg takes one statement per execute)."""
    for statement in script.split(';\n'):
        if statement.strip():
            op.execute(statement)


def tenant_rls(table: str, *, column: str = 'tenant_id') -> None:
    """ENABLE + FORCE row-level security: everyone sees only the rows of `SET LOCAL app.tenant_id` (unset means
    nothing); the owner (migrations and the explicit system paths) keeps access even where it is no superuser."""
    op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
    op.execute(f"""
        CREATE POLICY tenant_isolation ON {table}
        USING ({column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
        WITH CHECK ({column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid)""")
    op.execute(f"""
        DO $$ BEGIN
            EXECUTE format('CREATE POLICY system_access ON {table} TO %I USING (true) WITH CHECK (true)',
                           current_user);
        END $$""")


def telemetry_view(template: str) -> None:
    """Create the `telemetry` view from `template` (`{options}`, and `{where}` after each `FROM` over an alias `p`):
    `security_invoker` on PostgreSQL 15+, so the caller's row-level security applies; before 15 a view runs as its
    owner, so it filters by tenant itself (or is the owner's), as the TimescaleDB views do."""
    connection = op.get_bind()
    if int(connection.scalar(text('SHOW server_version_num'))) >= 150000:
        op.execute(template.format(options=' WITH (security_invoker = true)', where=''))
        return
    owner = str(connection.scalar(text('SELECT current_user'))).replace("'", "''")
    op.execute(template.format(options='', where=f"\nWHERE p.{TENANT_FILTER} OR current_user = '{owner}'"))
