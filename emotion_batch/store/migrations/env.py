"""Alembic environment of emotion_batch: configured in code by ``emotion_batch.store.schema.alembic_config``.

Online, the caller hands over an open connection in ``config.attributes["connection"]`` (and owns its
transaction); offline (``emotion-batch db upgrade --sql``), the SQL is written for the URL's dialect.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from emotion_batch.store.models import Base
from emotion_batch.store.schema import VERSION_TABLE

config = context.config
options = {
    "target_metadata": Base.metadata,
    "version_table": VERSION_TABLE,
    "render_as_batch": True,  # autogenerate: ALTERs that SQLite can run
    "compare_type": True,
}

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:  # plain `alembic` command line with sqlalchemy.url set
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            context.configure(connection=connection, **options)
            context.run_migrations()
        engine.dispose()
    else:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
