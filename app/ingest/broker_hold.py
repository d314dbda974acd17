"""Since when the broker may be holding messages for Gito that Gito has not received.

The device state mark (`state_mark.py`) says up to when everything Gito *received* is written. Messages the broker
keeps because Gito lost its connection, or stopped reading the socket (backpressure), are not received, and a device
whose news waits there would be taken for silent: through a 7 s break of Gito's link the reported lag stayed under
2 s, so the presence sweep would turn a device that went on talking offline (`tests/ingest/test_state_mark.py`). So
from the moment reading stops the mark stands no later than that moment, until Gito has read freely for `SETTLE_S`:
a broker with more queued for Gito fills the in-flight window again within milliseconds of a resume, which stops
reading again before then. Under sustained overload the mark therefore stays at the first pause, and while the
broker stays unreachable at the moment the link went down (either way at most `STATE_LAG_MAX_S` behind, for devices
sending over HTTP too): silence is judged late rather than wrongly. `/metrics` shows the lag
(`gito_ingest_state_lag_seconds`).

Before the first connection nothing is held back: there is no session whose messages Gito would be missing yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SETTLE_S = 1.0


class BrokerHold:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None  # reading stopped then (monotonic)
        self._reading_since: float | None = None  # connected and reading, since then

    def stopped(self) -> None:
        """Reading paused, or the connection lost."""
        if self._since is None:
            self._since = self._clock()
        self._reading_since = None

    def reading(self) -> None:
        """Connected and reading (again)."""
        if self._reading_since is None:
            self._reading_since = self._clock()

    def since(self) -> float | None:
        """When the broker may have begun holding messages back (monotonic), while it may still be."""
        if (self._since is not None and self._reading_since is not None
                and self._clock() - self._reading_since >= SETTLE_S):
            self._since = None
        return self._since
