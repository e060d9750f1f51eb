"""Alembic's migrations of the metadata database, shipped in the package (run by flashml.db.migrate).

A schema change: edit flashml/db/schema.py, then add a revision in versions/ whose down_revision is the head
(render_as_batch makes SQLite's ALTERs work); tests/unit/db checks that head equals schema.py on both engines.
"""
