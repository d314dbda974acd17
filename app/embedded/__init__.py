"""Embedded stand-ins for external services, used when their variables are not set."""
