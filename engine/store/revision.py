"""The newest schema revision, in a module of its own so that a check of it imports nothing.

Every command checks the schema, and reading one row beats loading Alembic to find the head;
``tests/integration/test_migrations.py`` holds this equal to Alembic's head. Set it with each new migration.
"""

HEAD = "0010"
