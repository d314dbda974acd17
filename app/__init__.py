"""Gito: a Python-native, multi-tenant IoT monitoring and device-management platform."""
