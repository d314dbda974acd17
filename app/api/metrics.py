"""`/metrics`: the process's ingest counters in Prometheus' text format, for scraping and for load tests.

Aggregates of this process only (no tenant, device or key names), so it needs no sign-in; put it behind your
network's scrape access like any exporter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.platform import Platform


def metrics_text(platform: Platform) -> str:
    writer, consumer = platform.writer, platform.consumer
    samples = [
        ('gito_mqtt_connected', 'gauge', 'Whether the consumer is connected', int(platform.link.connected)),
        ('gito_mqtt_received_total', 'counter', 'MQTT messages received', consumer.received),
        ('gito_mqtt_ignored_total', 'counter', 'MQTT messages for unknown or refused devices', consumer.ignored),
        ('gito_mqtt_acked_total', 'counter', 'QoS 1 messages acknowledged after commit', consumer.acked),
        ('gito_mqtt_inflight', 'gauge', 'Messages received and not yet committed', consumer.inflight),
        ('gito_mqtt_queue_overflows_total', 'counter',
         'Times the managed broker began dropping messages queued for Gito (its queue bound reached)',
         platform.link.queue_overflows),
        ('gito_mqtt_broker_dropped_total', 'counter',
         'Messages an external broker dropped from its queues (its $SYS total; any session) since Gito started',
         platform.broker_drops.dropped if platform.broker_drops is not None else 0),
        ('gito_ingest_messages_total', 'counter', 'Messages committed (MQTT and HTTP)', writer.stats.messages),
        ('gito_ingest_rows_total', 'counter', 'Readings stored', writer.stats.rows),
        ('gito_ingest_duplicates_total', 'counter', 'Readings dropped as duplicates', writer.stats.duplicates),
        ('gito_ingest_rejected_total', 'counter', 'Payloads rejected as malformed', writer.stats.rejected),
        ('gito_ingest_batches_total', 'counter', 'Batches committed', writer.stats.batches),
        ('gito_ingest_failures_total', 'counter', 'Batch commits that failed and were retried', writer.stats.failures),
        ('gito_ingest_archived_total', 'counter', 'Payloads kept in the raw archive', writer.stats.archived),
        ('gito_ingest_state_flush_failures_total', 'counter',
         'Flushes of latest values and device counters that failed (put back, written with the next)',
         writer.state.failures),
        ('gito_ingest_backlog', 'gauge', 'Items waiting for the batch writer', writer.backlog),
        ('gito_ingest_healthy', 'gauge', 'Whether the last commit succeeded', int(writer.healthy)),
        ('gito_ingest_state_lag_seconds', 'gauge',
         'How far last-seen times, device counters and latest values written stand behind what was received',
         round((datetime.now(UTC) - writer.state.flushed_through()).total_seconds(), 3)),
    ]
    lines = []
    for name, kind, help_text, value in samples:
        lines += [f'# HELP {name} {help_text}', f'# TYPE {name} {kind}', f'{name} {value}']
    return '\n'.join(lines) + '\n'


def metrics_router(platform: Platform) -> APIRouter:
    router = APIRouter()

    @router.get('/metrics', include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics_text(platform), media_type='text/plain; version=0.0.4')

    return router
