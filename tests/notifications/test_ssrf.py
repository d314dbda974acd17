"""Outbound HTTP never reaches loopback, private, link-local or metadata addresses unless a tenant allows them."""

from __future__ import annotations

import ipaddress

import pytest

from app.services.notifications.safe_http import SafeHttpClient
from tests.notifications.conftest import Receiver, StartReceiver

BLOCKED_URLS = [
    'http://127.0.0.1/', 'http://2130706433/', 'http://0x7f.0.0.1/', 'http://0x7f000001/', 'http://017700000001/',
    'http://0177.0.0.1/', 'http://127.1/', 'http://127.0.1/', 'http://[::1]/', 'http://[::]/',
    'http://[::ffff:127.0.0.1]/', 'http://[::ffff:7f00:1]/', 'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://[::127.0.0.1]/', 'http://[2002:7f00:1::]/', 'http://[64:ff9b::7f00:1]/', 'http://[64:ff9b::a9fe:a9fe]/',
    'http://169.254.169.254/latest/meta-data', 'http://[::ffff:169.254.169.254]/', 'http://169.254.1.1/',
    'http://metadata.google.internal/computeMetadata/v1/', 'http://metadata/', 'http://instance-data/',
    'http://10.0.0.1/', 'http://192.168.1.1/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://100.64.0.1/',
    'http://[fd00::1]/', 'http://[fc00::1]/', 'http://[fe80::1]/', 'http://0.0.0.0/', 'http://0/',
    'http://224.0.0.1/', 'http://[ff02::1]/', 'http://255.255.255.255/', 'http://240.0.0.1/', 'http://198.18.0.1/',
    'http://localhost/', 'http://LOCALHOST./', 'http://127.0.0.1:8080@example.test/',
    'ftp://example.com/', 'file:///etc/passwd', 'gopher://127.0.0.1:25/', 'dict://127.0.0.1:11211/', 'example.com',
]


@pytest.mark.parametrize('url', BLOCKED_URLS)
async def test_crafted_url_is_blocked_with_a_reason(url: str) -> None:
    async def resolver(host: str, _port: int) -> list[str]:
        return {'localhost': ['127.0.0.1', '::1'], 'example.test': ['127.0.0.1']}.get(host, ['93.184.216.34'])

    result = await SafeHttpClient(resolver=resolver).post(url, content=b'{}', headers={})
    assert not result.ok and result.status_code is None
    reasons = ('Blocked', 'metadata', 'Only http', 'no host')
    assert result.error and any(w in result.error for w in reasons), result.error


async def test_a_name_resolving_to_loopback_never_reaches_the_receiver(receiver: Receiver) -> None:
    async def resolver(_host: str, _port: int) -> list[str]:
        return ['127.0.0.1']

    result = await SafeHttpClient(resolver=resolver).post(
        f'http://loopback.example.test:{receiver.port}/hook', content=b'{}', headers={})
    assert result.error == 'Blocked: loopback.example.test resolves to 127.0.0.1 is a private, loopback, ' \
                           'link-local or reserved address.'
    assert receiver.requests == []


async def test_one_bad_address_among_several_blocks_the_name(receiver: Receiver) -> None:
    async def resolver(_host: str, _port: int) -> list[str]:
        return ['93.184.216.34', '127.0.0.1']

    result = await SafeHttpClient(resolver=resolver).post(f'http://mixed.test:{receiver.port}/', content=b'',
                                                          headers={})
    assert result.error and result.error.startswith('Blocked')
    assert receiver.requests == []


async def test_loopback_receiver_blocked_without_and_reached_with_the_allow_list(receiver: Receiver) -> None:
    client = SafeHttpClient()
    blocked = await client.post(receiver.url, content=b'{}', headers={})
    assert blocked.error and blocked.error.startswith('Blocked') and receiver.requests == []
    allowed = await client.post(receiver.url, content=b'{}', headers={},
                                allowed=[ipaddress.ip_network('127.0.0.0/8')])
    assert allowed.ok and len(receiver.requests) == 1


async def test_metadata_address_stays_blocked_even_inside_an_allowed_range() -> None:
    result = await SafeHttpClient().post('http://169.254.169.254/latest/meta-data', content=b'', headers={},
                                         allowed=[ipaddress.ip_network('169.254.0.0/16')])
    assert result.error == 'Blocked: 169.254.169.254 resolves to 169.254.169.254 is a cloud metadata address.'


async def test_redirect_from_an_allowed_receiver_is_not_followed(receiver_factory: StartReceiver) -> None:
    target = await receiver_factory()
    allowed_one = await receiver_factory()
    allowed_one.script = [(302, {'Location': target.url}), (307, {'Location': 'http://169.254.169.254/'})]
    only_first = [ipaddress.ip_network('127.0.0.1/32')]
    client = SafeHttpClient()

    first = await client.post(allowed_one.url, content=b'{}', headers={}, allowed=only_first)
    second = await client.post(allowed_one.url, content=b'{}', headers={}, allowed=only_first)

    assert first.status_code == 302 and not first.ok
    assert first.error == f'HTTP 302: redirect not followed (to {target.url}).'
    assert second.status_code == 307 and not second.ok
    assert len(allowed_one.requests) == 2 and target.requests == []


async def test_dns_rebinding_cannot_switch_the_checked_address(receiver_factory: StartReceiver) -> None:
    """The resolver answers an allowed address first and a blocked one after: the request goes to the first."""
    checked = await receiver_factory(host='127.0.0.2')
    forbidden = await receiver_factory(host='127.0.0.1', port=checked.port)
    answers = [['127.0.0.2'], ['127.0.0.1'], ['127.0.0.1']]
    calls: list[str] = []

    async def rebinding(host: str, _port: int) -> list[str]:
        calls.append(host)
        return answers.pop(0)

    client = SafeHttpClient(resolver=rebinding)
    result = await client.post(f'http://rebind.test:{checked.port}/hook', content=b'{}', headers={},
                               allowed=[ipaddress.ip_network('127.0.0.2/32')])

    assert result.ok, result.error
    assert calls == ['rebind.test']  # resolved once, and that answer was used for the connection
    assert len(checked.requests) == 1 and forbidden.requests == []
    assert checked.requests[0][0]['host'] == f'rebind.test:{checked.port}'


async def test_body_is_read_only_up_to_the_cap(receiver_factory: StartReceiver) -> None:
    big = await receiver_factory()
    big.reply = b'x' * 3_000_000
    result = await SafeHttpClient(max_body=1_000_000).post(
        big.url, content=b'', headers={}, allowed=[ipaddress.ip_network('127.0.0.0/8')])
    assert result.ok and len(result.body) == 1_000_000
