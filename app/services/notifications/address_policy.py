"""Which resolved addresses outbound notification traffic may reach (SSRF defence)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset({
    'metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal',
    'metadata.azure.com', 'metadata.packet.net', 'metadata.platformequinix.com',
})
# Cloud metadata endpoints stay blocked even when a tenant allow-lists a private range around them.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    '169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254',
))
BLOCKED_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
    '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
    '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
))
NAT64 = (ipaddress.IPv6Network('64:ff9b::/96'), ipaddress.IPv6Network('64:ff9b:1::/48'))


def parse_cidrs(values: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: mapped, compatible, 6to4, Teredo or NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def blocked_reason(address: IPAddress, allowed: Sequence[Network] = ()) -> str | None:
    """None when the address may be reached; else why not."""
    if address in METADATA_ADDRESSES:
        return f'{address} is a cloud metadata address'
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = blocked_reason(inner, allowed)
            return None if reason is None else f'{address} embeds {reason}'
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in network for network in BLOCKED_V4):
            return f'{address} is a private, loopback, link-local or reserved address'
        return None
    if (address.is_loopback or address.is_link_local or address.is_private or address.is_multicast
            or address.is_unspecified or address.is_reserved or address.is_site_local or not address.is_global):
        return f'{address} is a private, loopback, link-local or reserved address'
    return None
