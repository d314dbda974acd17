"""Log records of events that come in floods: a sample per interval, with a count of what was left out."""

from __future__ import annotations

import logging
import time

import pytest

from app.logs import Throttled


def test_a_flood_logs_one_record_per_interval_and_the_next_counts_what_it_left_out(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger='test.flood')
    rejected = Throttled(logging.getLogger('test.flood'), logging.INFO, 'payload rejected', every_s=0.2)
    for n in range(1000):
        rejected(device_id=f'd{n}')
    logged = [(r.getMessage(), vars(r)['device_id'], vars(r)['suppressed']) for r in caplog.records]
    assert logged == [('payload rejected', 'd0', 0)]
    time.sleep(0.25)
    rejected(device_id='late')
    assert [(vars(r)['device_id'], vars(r)['suppressed']) for r in caplog.records][1:] == [('late', 999)]
