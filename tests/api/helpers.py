"""Assertions and waits shared by the API tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar('T')


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer, after checking its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers['content-type'] == 'application/problem+json'
    body: dict[str, Any] = response.json()
    assert body['status'] == status
    assert body['title'] and body['detail'] and body['type']
    assert 'Traceback' not in response.text
    return body


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, seconds: float = 2) -> T:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if check(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)
