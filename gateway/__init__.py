"""Supervision gateway: core, app and CLI."""

__version__ = "0.1.0"
