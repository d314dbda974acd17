"""Storage jobs wait for a table lock briefly, then give up and try again at their next tick.

Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on its parent (and, to create one, on the default
partition); summarizing an index takes SHARE UPDATE EXCLUSIVE on its table. Queued behind a long holder (a CSV
export, a long chart, a rollup run, a vacuum), a request for a strong lock holds up every later one on the same
table, the batch writer's inserts included, for as long as that holder runs.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

SHORT_LOCK_WAIT = "SELECT set_config('lock_timeout', '100ms', true)"  # for the rest of the transaction
LOCK_NOT_AVAILABLE = '55P03'


def lock_not_available(error: DBAPIError) -> bool:
    return getattr(error.orig, 'sqlstate', None) == LOCK_NOT_AVAILABLE
