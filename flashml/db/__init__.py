"""Metadata in SQL: every query FlashML makes lives in this package (SQLAlchemy Core).

Only ``engine.py`` knows the database is SQLite, so a PostgreSQL backend can be added there later.
"""
