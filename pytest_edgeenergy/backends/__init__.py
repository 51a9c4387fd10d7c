"""Backends interpret a plan: ``local`` runs every device in this process."""

from .local import run_local

__all__ = ["run_local"]
