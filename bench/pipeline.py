"""CPU per message of ingest's Python hot path, without I/O: decode → prepare → encode, as the batch writer runs them.

    python bench/pipeline.py --devices 10000 --messages 200000

`bench/ingest.py` measures the whole system, but on a shared two-core machine its throughput moves by 10% from
run to run; this isolates what one change to the decoder, the sequence/quality bookkeeping or the row encoder
costs. Payloads are `bench/ingest.py`'s (four numeric keys, `ts`, `seq`), in batches of its size, over
`--devices` devices whose series are known (the steady state); the garbage collector is tuned as `gito serve`
tunes it. One warm-up pass, then `--rounds` timed passes over fresh sequence numbers; the best round is printed
(process CPU time, so other load on the machine counts as little as possible).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from app.ingest.batch_items import Inbound, Item
from app.ingest.batch_prepare import prepare
from app.ingest.copy_rows import reading_prefix, series_prefix
from app.ingest.device_tallies import Tallies
from app.ingest.latest import LatestBuffer
from app.ingest.mqtt_consumer import hashed_uuid
from app.ingest.payload import decode
from app.ingest.quality import SeqState
from app.ingest.row_encoder import RowEncoder
from app.platform import tune_garbage_collector

PAYLOAD = b'{"t":%d.5,"h":%d,"p":1013.25,"v":3.3,"ts":%d,"seq":%d}'  # bench/ingest.py's
WITH_BATTERY = b'{"t":%d.5,"h":%d,"p":1013.25,"v":3.3,"b":97.5,"ts":%d,"seq":%d}'  # `--alternate`: every other one
KEYS = ('t', 'h', 'p', 'v', 'b')
BATCH_MESSAGES = 1250  # 5,000 rows: the writer's default batch


def payloads(devices: list[uuid.UUID], count: int, round_number: int, *, alternate: bool = False
             ) -> list[tuple[uuid.UUID, bytes]]:
    """Each device's `seq` goes on where the last round left it (no gap: the in-order case, as under load)."""
    now_ms = int(time.time() * 1000)
    out = []
    for index in range(count):
        turn = round_number * (count // len(devices)) + index // len(devices)
        body = WITH_BATTERY if alternate and turn % 2 else PAYLOAD
        out.append((devices[index % len(devices)], body % (index % 40, index % 100, now_ms + turn, turn)))
    return out


def timed_round(tenant_id: uuid.UUID, messages: list[tuple[uuid.UUID, bytes]], encoder: RowEncoder,
                tallies: Tallies, sequences: dict[uuid.UUID, SeqState]) -> dict[str, float]:
    spent = {'decode': 0.0, 'prepare': 0.0, 'encode': 0.0}
    for start in range(0, len(messages), BATCH_MESSAGES):
        began = time.process_time()
        received_at = datetime.now(UTC)
        items: list[Item] = [Inbound(tenant_id, device_id, decode(body, received_at=received_at), received_at)
                             for device_id, body in messages[start:start + BATCH_MESSAGES]]
        decoded = time.process_time()
        prepared = prepare(items, tallies, sequences)
        prepared_at = time.process_time()
        if not encoder.encode_known(prepared):
            raise SystemExit('a series was unknown: the bench must number every series first')
        encoded = time.process_time()
        spent['decode'] += decoded - began
        spent['prepare'] += prepared_at - decoded
        spent['encode'] += encoded - prepared_at
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--devices', type=int, default=10_000)
    parser.add_argument('--messages', type=int, default=200_000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--alternate', action='store_true',
                        help="every other message of a device carries a fifth key (a battery level): two key sets")
    parser.add_argument('--timescale', action='store_true',
                        help="encode TimescaleDB's rows (one per reading), not plain PostgreSQL's (one per message)")
    args = parser.parse_args()
    args.messages -= args.messages % args.devices  # every device the same number of messages a round

    # ids as ingest has them: the tenant's read from PostgreSQL, the device's parsed from the topic
    tenant_id = hashed_uuid(str(uuid.uuid4()))
    devices = [hashed_uuid(str(uuid.uuid4())) for _ in range(args.devices)]
    encoder = RowEncoder(LatestBuffer(), {(tenant_id, key): key_id for key_id, key in enumerate(KEYS, start=1)})
    encoder.use_layout(points=not args.timescale)
    series_id = 0
    for device_id in devices:  # as the writer's cache holds them once every series has been seen
        series_id += 1
        encoder._device_series[device_id] = series_id  # its rows of numbers (plain PostgreSQL)
        for key_id, key in enumerate(KEYS, start=1):
            series_id += 1
            prefix = (series_prefix(tenant_id, series_id) if not args.timescale
                      else reading_prefix(tenant_id, device_id, key_id))
            encoder._series.setdefault(device_id, {})[key] = (series_id, prefix)
    tallies: Tallies = {}
    sequences: dict[uuid.UUID, SeqState] = {}
    tune_garbage_collector()

    timed_round(tenant_id, payloads(devices, args.messages, 0, alternate=args.alternate), encoder, tallies,
                sequences)  # warm-up
    best: dict[str, float] | None = None
    for round_number in range(1, args.rounds + 1):
        messages = payloads(devices, args.messages, round_number, alternate=args.alternate)
        spent = timed_round(tenant_id, messages, encoder, tallies, sequences)
        if best is None or sum(spent.values()) < sum(best.values()):
            best = spent
    assert best is not None
    per_message = {name: round(seconds / args.messages * 1e6, 2) for name, seconds in best.items()}
    result: dict[str, Any] = {
        'layout': 'timescaledb' if args.timescale else 'plain', 'alternate': args.alternate, 'devices': args.devices,
        'messages_per_round': args.messages, 'rounds': args.rounds,
        'us_per_message': {'total': round(sum(per_message.values()), 2), **per_message},
    }
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
