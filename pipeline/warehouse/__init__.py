"""The warehouse edge: table definitions (SQLAlchemy, SQLite and PostgreSQL), engines and transactions,
bulk writes and typed reads, and the published version."""
