"""The state store: what should exist. SQLAlchemy 2, SQLite by default, PostgreSQL for sites
with several machines."""
