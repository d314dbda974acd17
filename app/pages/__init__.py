"""Pages: one module per screen; `register` adds them all to NiceGUI for one platform."""

from __future__ import annotations

from app.platform import Platform


def register(platform: Platform) -> None:
    from app.components import alarm_counts
    from app.pages import (
        account,
        account_links,
        alarms,
        audit,
        auth,
        device,
        fleet,
        notifications,
        rules,
        session,
        sso,
        storage,
        users,
    )
    from app.pages import maintenance as maintenance_page

    alarm_counts.install(platform, lambda: session.current_principal(platform))

    auth.register(platform)
    account_links.register(platform)
    sso.register(platform)
    fleet.register(platform)
    device.register(platform)
    account.register(platform)
    users.register(platform)
    audit.register(platform)
    notifications.register(platform)
    alarms.register(platform)
    rules.register(platform)
    storage.register(platform)
    maintenance_page.register(platform)
