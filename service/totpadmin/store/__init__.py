"""Storage in SQL through SQLAlchemy 2: tenants, users and their claims."""

from .database import Database

__all__ = ["Database"]
