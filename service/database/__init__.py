"""The store: SQLAlchemy models, the database engine and Alembic migrations."""
