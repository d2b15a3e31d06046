"""The service's state in a database: tenants, their keys (hashes only), adapter assignments and feedback.

SQLite in the data dir by default, PostgreSQL by `RAGSERVE_DATABASE_URL`; one schema, migrated by Alembic at
start (`database.py`, `migrations/`)."""
