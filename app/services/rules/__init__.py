"""Alarm rules: definitions (app.models.rules), the pure evaluator, the in-memory index and the stream engine."""
