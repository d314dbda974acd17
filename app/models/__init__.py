"""SQLModel tables and the pydantic schemas that cross the service boundary."""

from app.models.tables import Device, LatestValue, Telemetry, TelemetryKey, Tenant, User

__all__ = ['Device', 'LatestValue', 'Telemetry', 'TelemetryKey', 'Tenant', 'User']
