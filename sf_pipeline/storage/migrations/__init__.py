"""Alembic migrations for the application database (see ``Database.migrate``)."""
