"""Reading back what devices sent: raw pages, key filters, buckets, and the errors of bad parameters."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.api.telemetry import bucket_seconds
from app.services.errors import InvalidInput
from tests.api.conftest import Api, Caller, DeviceMaker, SignIn
from tests.api.helpers import problem

Sent = list[tuple[int, dict[str, float]]]
SENT: Sent = [(0, {'temp': 10, 'hum': 50}), (20, {'temp': 20}), (40, {'temp': 30}),
              (60, {'temp': 50, 'hum': 55}), (90, {'temp': 70})]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace('+00:00', 'Z')


async def seeded(api: Api, caller: Caller, make_device: DeviceMaker) -> tuple[str, datetime]:
    """A device with SENT stored at offsets (seconds) from a whole minute half an hour ago."""
    device, credentials = await make_device(caller)
    base = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    payload = [{**values, 'ts': int((base + timedelta(seconds=offset)).timestamp() * 1000)} for offset, values in SENT]
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json=payload,
                                     headers={'Authorization': f'Bearer {credentials["token"]}'})
    assert response.json() == {'accepted': 5, 'points': 7}
    return f'/api/v1/devices/{device["id"]}/telemetry', base


async def get(api: Api, caller: Caller, url: str, **params: Any) -> Any:
    response = await api.client.get(url, headers=caller.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_raw_points_default_to_the_last_hour_and_page(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    url, base = await seeded(api, caller, make_device)
    everything = await get(api, caller, url)
    assert len(everything['points']) == 7 and everything['next_cursor'] is None
    collected: list[tuple[str, float]] = []
    cursor = None
    for _ in range(5):
        page = await get(api, caller, url, keys='temp', limit=2, **({'cursor': cursor} if cursor else {}))
        collected += [(p['ts'], p['value']) for p in page['points']]
        cursor = page['next_cursor']
        if cursor is None:
            break
    expected = [(base + timedelta(seconds=offset), values['temp']) for offset, values in SENT]
    assert [(datetime.fromisoformat(ts), value) for ts, value in collected] == expected


async def test_explicit_range_and_repeated_keys(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    url, base = await seeded(api, caller, make_device)
    response = await api.client.get(url, headers=caller.headers, params=[
        ('start', iso(base + timedelta(seconds=20))), ('end', iso(base + timedelta(seconds=90))),
        ('keys', 'hum'), ('keys', 'temp')])
    points = [(p['key'], p['value']) for p in response.json()['points']]
    assert points == [('temp', 20.0), ('temp', 30.0), ('hum', 55.0), ('temp', 50.0)]  # by time, then key id
    window = {'start': iso(base + timedelta(seconds=20)), 'end': iso(base + timedelta(seconds=90))}
    comma = await get(api, caller, url, keys='hum, temp', **window)
    assert [(p['key'], p['value']) for p in comma['points']] == points
    humidity = await get(api, caller, url, keys='hum', **window)
    assert [(p['key'], p['value']) for p in humidity['points']] == [('hum', 55.0)]
    assert await get(api, caller, url, keys='nothing') == {'points': [], 'next_cursor': None}


async def test_aggregate_buckets_average_and_count(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    url, base = await seeded(api, caller, make_device)
    window = {'start': iso(base), 'end': iso(base + timedelta(minutes=2)), 'keys': 'temp'}
    averages = await get(api, caller, f'{url}/aggregate', bucket='1m', **window)
    assert [(datetime.fromisoformat(p['bucket']), p['value']) for p in averages] == [
        (base, (10 + 20 + 30) / 3), (base + timedelta(minutes=1), (50 + 70) / 2)]
    counts = await get(api, caller, f'{url}/aggregate', bucket='60', function='count', **window)
    assert [p['value'] for p in counts] == [3.0, 2.0]
    maxima = await get(api, caller, f'{url}/aggregate', bucket='2m', function='max',
                       start=iso(base), end=iso(base + timedelta(minutes=2)))
    assert {p['key']: p['value'] for p in maxima} == {'hum': 55.0, 'temp': 70.0}


async def test_latest_is_the_newest_by_timestamp(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    url, base = await seeded(api, caller, make_device)
    values = {v['key']: (datetime.fromisoformat(v['ts']), v['value']) for v in await get(api, caller, f'{url}/latest')}
    assert values == {'hum': (base + timedelta(seconds=60), 55.0), 'temp': (base + timedelta(seconds=90), 70.0)}


async def test_bad_start_is_a_422_naming_start(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, _ = await make_device(caller)
    url = f'/api/v1/devices/{device["id"]}/telemetry'
    for start in ('yesterday', '2026-01-01T00:00:00'):  # not a time; no zone
        body = problem(await api.client.get(url, headers=caller.headers, params={'start': start}), 422)
        assert body['field'] == 'start'
        assert body['errors'][0]['field'] == 'start'
    reversed_range = {'start': '2026-01-02T00:00:00Z', 'end': '2026-01-01T00:00:00Z'}
    assert problem(await api.client.get(url, headers=caller.headers, params=reversed_range), 422)['field'] == 'end'


async def test_bad_aggregate_parameters_name_the_field(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, _ = await make_device(caller)
    url = f'/api/v1/devices/{device["id"]}/telemetry/aggregate'
    for params, field in (({'bucket': 'soon'}, 'bucket'), ({'bucket': '0'}, 'bucket'),
                          ({'function': 'median'}, 'function'), ({'keys': 'a', 'end': 'later'}, 'end')):
        response = await api.client.get(url, headers=caller.headers, params=params)
        assert problem(response, 422)['field'] == field
    assert problem(await api.client.get(f'/api/v1/devices/{device["id"]}/telemetry', headers=caller.headers,
                                        params={'cursor': 'garbage'}), 422)['field'] == 'cursor'


@pytest.mark.parametrize(('text', 'seconds'), [('60', 60), ('45s', 45), ('5m', 300), ('1h', 3600), ('1d', 86400),
                                                (' 2H ', 7200)])
def test_bucket_spellings(text: str, seconds: int) -> None:
    assert bucket_seconds(text) == seconds


def test_bucket_spelling_errors_name_bucket() -> None:
    with pytest.raises(InvalidInput) as caught:
        bucket_seconds('1w')
    assert caught.value.field == 'bucket'
