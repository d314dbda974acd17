"""Time-series storage: backend detection, partitions, rollups, retention, per-tenant settings and usage."""
