"""Digest instead of a storm: many raises of one rule on one channel within a window become one message."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Batch:
    """Rows sent as one message; a single row keeps its own `webhook-id` across retries."""

    rows: list[dict[str, Any]]

    @property
    def message_id(self) -> str:
        return 'msg_' + min(str(row['id']) for row in self.rows).replace('-', '')


def group_rows(rows: list[dict[str, Any]], *, threshold: int, window_s: float) -> list[Batch]:
    """Rows of the same channel, rule and transition created within `window_s` of each other: one digest
    when there are more than `threshold` of them, else one message each."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row['channel_id'], row['rule_id'], row['transition'])].append(row)
    batches: list[Batch] = []
    for members in groups.values():
        members.sort(key=lambda row: row['created_at'])
        while members:
            start = members[0]['created_at']
            window = [row for row in members if (row['created_at'] - start).total_seconds() <= window_s]
            members = members[len(window):]
            if len(window) > threshold and window[0]['transition'] != 'test':
                batches.append(Batch(window))
            else:
                batches.extend(Batch([row]) for row in window)
    return batches
