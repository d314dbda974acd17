"""Who may do what: one table of role → permissions, checked by the services (and asked by the pages).

admin: everything; operator: rules, alarms, commands, devices; technician: devices, commissioning,
acknowledging alarms (the tablet role); viewer: read only.
"""

from __future__ import annotations

from enum import StrEnum

from app.models.schemas import Principal, Role
from app.services.errors import PermissionDenied


class Permission(StrEnum):
    VIEW = 'view'
    MANAGE_USERS = 'manage_users'
    MANAGE_CHANNELS = 'manage_channels'
    VIEW_AUDIT = 'view_audit'
    MANAGE_DEVICES = 'manage_devices'
    COMMISSION_DEVICES = 'commission_devices'
    MANAGE_RULES = 'manage_rules'
    MANAGE_ALARMS = 'manage_alarms'
    ACKNOWLEDGE_ALARMS = 'acknowledge_alarms'
    SEND_COMMANDS = 'send_commands'
    MANAGE_STORAGE = 'manage_storage'
    REPLAY_DATA = 'replay_data'


_TECHNICIAN = frozenset({Permission.VIEW, Permission.MANAGE_DEVICES, Permission.COMMISSION_DEVICES,
                         Permission.ACKNOWLEDGE_ALARMS})
_OPERATOR = _TECHNICIAN | {Permission.MANAGE_RULES, Permission.MANAGE_ALARMS, Permission.SEND_COMMANDS,
                           Permission.REPLAY_DATA}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    'admin': frozenset(Permission),
    'operator': _OPERATOR,
    'technician': _TECHNICIAN,
    'viewer': frozenset({Permission.VIEW}),
}
ROLE_RANK: dict[Role, int] = {'viewer': 0, 'technician': 1, 'operator': 2, 'admin': 3}

MESSAGES = {
    Permission.MANAGE_USERS: 'Only an admin can manage users.',
    Permission.MANAGE_CHANNELS: 'Only an admin can manage notification channels.',
    Permission.VIEW_AUDIT: 'Only an admin can read the audit log.',
    Permission.MANAGE_DEVICES: 'Your role can only view devices.',
    Permission.MANAGE_STORAGE: 'Only an admin can manage data retention.',
    Permission.REPLAY_DATA: 'Only an operator or admin can replay archived messages.',
}


def can(principal: Principal, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(principal.role, frozenset())


def require(principal: Principal, permission: Permission) -> None:
    """Raise PermissionDenied (403) unless the principal's role grants the permission."""
    if not can(principal, permission):
        raise PermissionDenied(MESSAGES.get(permission, f'Your role ({principal.role}) may not do this.'))
