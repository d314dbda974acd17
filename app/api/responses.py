"""The API's JSON responses: NiceGUI's orjson rendering, falling back to the standard library for what orjson
refuses (integers beyond 64 bits, which a device's metadata or a JSON value may hold) instead of a 500."""

from __future__ import annotations

import json
from typing import Any

from nicegui.json import NiceGUIJSONResponse


class ApiJSONResponse(NiceGUIJSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except TypeError:
            return json.dumps(content, ensure_ascii=False, separators=(',', ':'), default=str).encode()
