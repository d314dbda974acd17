"""A device's data-quality panel: what arrived, what was kept, and what was wrong with the rest."""

from __future__ import annotations

from nicegui import ui

from app.components.formatting import utc_time
from app.models.schemas import DevicePublic


def detail_field(label: str, marker: str) -> ui.label:
    """A label and, beside it, the value (returned) in a two-column detail grid."""
    ui.label(label).classes('text-sm text-grey-7')
    return ui.label().classes('text-base break-all').mark(marker)


def skew_text(milliseconds: int | None) -> str:
    if milliseconds is None:
        return 'no timestamps sent'
    seconds = milliseconds / 1000
    sign = '+' if seconds > 0 else ''
    return f'{sign}{seconds:.1f} s ({"ahead" if seconds > 0 else "behind" if seconds < 0 else "in step"})'


def gaps_text(device: DevicePublic) -> str:
    if not device.seq_gaps:
        return 'none open' if device.last_seq is not None else 'no seq sent'
    ranges = [f'{first}' if first == last else f'{first}-{last}' for first, last in device.seq_gaps[-5:]]
    more = len(device.seq_gaps) - len(ranges)
    return ', '.join(ranges) + (f' (+{more} earlier)' if more else '')


class DataQuality:
    def __init__(self, device: DevicePublic) -> None:
        with ui.card().classes('w-full gap-2').mark('data-quality'):
            ui.label('Data quality').classes('text-lg font-semibold')
            with ui.grid().classes('w-full gap-x-4 gap-y-1 grid-cols-[max-content_1fr]'):
                self.received = detail_field('Messages received', 'messages-received')
                self.stored = detail_field('Readings stored', 'readings-stored')
                self.duplicates = detail_field('Duplicate readings dropped', 'readings-duplicate')
                self.out_of_order = detail_field('Out of order', 'messages-out-of-order')
                self.missing = detail_field('Missing (seq gaps)', 'seq-missing')
                self.gaps = detail_field('Open gaps', 'seq-gaps')
                self.skew = detail_field('Device ts vs receive time (last / largest)', 'clock-skew')
                self.malformed = detail_field('Malformed', 'messages-malformed')
                self.reason = detail_field('Last rejected because', 'malformed-reason')
                self.excerpt = detail_field('Payload excerpt', 'malformed-excerpt')
                self.malformed_at = detail_field('Rejected at', 'malformed-at')
            self.excerpt.classes('font-mono text-sm bg-grey-2 rounded px-1')
        self.show(device)

    def show(self, device: DevicePublic) -> None:
        self.received.set_text(f'{device.messages_received:,}')
        self.stored.set_text(f'{device.readings_stored:,}')
        self.duplicates.set_text(f'{device.readings_duplicate:,}')
        self.out_of_order.set_text(f'{device.messages_out_of_order:,}')
        self.missing.set_text(f'{device.seq_missing:,}')
        self.missing.classes(replace='text-base ' + ('text-warning font-semibold' if device.seq_missing else ''))
        self.gaps.set_text(gaps_text(device))
        self.skew.set_text(f'{skew_text(device.clock_skew_ms)} / {skew_text(device.max_clock_skew_ms)}'
                           if device.clock_skew_ms is not None else skew_text(None))
        self.malformed.set_text(f'{device.messages_malformed:,}')
        self.malformed.classes(replace='text-base ' + ('text-negative font-semibold'
                                                       if device.messages_malformed else ''))
        self.reason.set_text(device.last_malformed_reason or 'nothing rejected')
        self.excerpt.set_text(device.last_malformed_excerpt or '—')
        self.malformed_at.set_text(utc_time(device.last_malformed_at))
