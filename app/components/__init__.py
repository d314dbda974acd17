"""Reusable UI pieces: page frame, status badge, device cards, latest values, live chart, dialogs."""
