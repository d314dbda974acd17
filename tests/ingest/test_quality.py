"""Sequence tracking: duplicates inside the window, gaps opened and closed, a device that restarts its counter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from app.ingest.quality import WINDOW, QualityDelta, SeqState, next_in_order, take

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def feed(state: SeqState, *seqs: int) -> tuple[QualityDelta, list[bool]]:
    delta = QualityDelta()
    kept = [take(state, delta, seq=seq, ts=T0 + timedelta(seconds=index), readings=2)
            for index, seq in enumerate(seqs)]
    return delta, kept


def test_a_repeated_seq_is_dropped_and_counted_per_reading() -> None:
    state = SeqState()
    delta, kept = feed(state, 1, 2, 2, 3, 1)
    assert kept == [True, True, False, True, False]
    assert delta.duplicates == 4 and delta.gaps_opened == 0


def test_gaps_open_and_late_arrivals_close_them() -> None:
    state = SeqState()
    delta, kept = feed(state, 10, 14, 12, 20)
    assert all(kept)
    assert state.gaps == [[11, 11], [13, 13], [15, 19]]
    assert delta.gaps_opened == 3 + 5 - 1 and state.missing() == 7


def test_far_below_the_window_is_a_restarted_counter_not_a_duplicate() -> None:
    state = SeqState()
    feed(state, 5000, 5001)
    delta, kept = feed(state, 0, 1, 1)
    assert kept == [True, True, False]
    assert state.highest == 1 and state.gaps == [] and delta.duplicates == 2
    assert WINDOW < 5000  # the restart above is further back than the duplicate window


def test_out_of_order_is_by_timestamp() -> None:
    state = SeqState()
    delta = QualityDelta()
    take(state, delta, seq=None, ts=T0, readings=1)
    take(state, delta, seq=None, ts=T0 - timedelta(seconds=1), readings=1)
    take(state, delta, seq=None, ts=T0 + timedelta(seconds=1), readings=1)
    assert delta.out_of_order == 1


def test_the_in_order_shortcut_decides_as_take_does() -> None:
    """`next_in_order` takes the common case without a delta; mixed with `take` it must leave the same state,
    counts and verdicts as `take` alone, whatever the devices send."""
    rng = random.Random(7)
    for _ in range(300):
        plain, mixed = SeqState(), SeqState()
        plain_delta, mixed_delta = QualityDelta(), QualityDelta()
        seq, second = rng.randrange(0, 3000), 0
        for _ in range(rng.randrange(1, 60)):
            seq = max(0, seq + rng.choice([1, 1, 1, 1, 0, -1, -3, 2, 5, -2000, 1500]))
            second += rng.choice([1, 1, 1, 0, -1, -5])
            sent = None if rng.random() < 0.1 else seq
            ts = T0 + timedelta(seconds=second)
            kept = take(plain, plain_delta, seq=sent, ts=ts, readings=2)
            assert (next_in_order(mixed, sent, ts)
                    or take(mixed, mixed_delta, seq=sent, ts=ts, readings=2)) == kept
            assert (mixed.highest, mixed.seen, mixed.gaps, mixed.newest_ts) == \
                (plain.highest, plain.seen, plain.gaps, plain.newest_ts)
        assert mixed_delta == plain_delta
