"""Placeholder until its pages land (same session)."""

ROUTES: list = []
