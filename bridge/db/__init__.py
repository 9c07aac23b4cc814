"""Persistence: the ORM model, engine/session factories and query/command functions."""
