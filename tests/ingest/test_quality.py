"""Sequence tracking: duplicates inside the window, gaps opened and closed, a device that restarts its counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.ingest.quality import WINDOW, QualityDelta, SeqState, take

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
