"""Shared pieces of the hand-written migrations."""

from alembic import op


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
