"""Alembic migrations of the results database, shipped inside the package and run without alembic.ini.

``emotion_batch.store.schema`` configures Alembic in code (``alembic_config``); ``emotion-batch db upgrade``
runs them. To add a revision after changing ``store/models.py`` (from a source checkout)::

    python -c "from alembic import command; from emotion_batch.store.schema import alembic_config; \\
               command.revision(alembic_config('sqlite:///dev.sqlite'), message='what changed', autogenerate=True)"

then review the generated file in ``versions/`` (name it ``NNNN_<what>.py``, revision ``"NNNN"``), put any
view change in it as frozen SQL, update ``sql/views*.sql`` and regenerate ``sql/schema.sql``
(``emotion_batch.store.schema.reference_ddl``). The tests fail until models, migrations, ``sql/schema.sql``
and ``sql/views*.sql`` agree.
"""
