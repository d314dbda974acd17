"""Pages: one module per screen; `register` adds them all to NiceGUI for one platform."""

from __future__ import annotations

from app.platform import Platform


def register(platform: Platform) -> None:
    from app.pages import auth, device, fleet

    auth.register(platform)
    fleet.register(platform)
    device.register(platform)
