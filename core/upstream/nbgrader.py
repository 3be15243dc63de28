"""nbgrader: its gradebook set-up and metadata checks made cheap to repeat (``fast_gradebook``).

Written against nbgrader 0.9.6, SQLAlchemy 2.1.9 and jsonschema 4.26.0.

Private things relied on (module globals of nbgrader, replaced for the duration of a ``with``
block and put back after it):

- ``nbgrader.api.create_engine``: the name ``Gradebook.__init__`` calls to make its engine
  (imported from SQLAlchemy into ``nbgrader.api``); replaced by one engine per URL.
- ``nbgrader.api.Base.metadata.create_all``: called by ``Gradebook.__init__`` on every open;
  replaced by one call per engine.
- ``nbgrader.api.inspect``: SQLAlchemy's ``inspect``, imported into ``nbgrader.api``, which
  ``Gradebook.__init__`` uses only as ``inspect(engine).get_table_names()``; replaced by a table
  list read once per engine.
- ``nbgrader.api.Gradebook.check_course``: a public method whose only caller is
  ``Gradebook.__init__`` (which ignores its result); replaced by one check per engine and course.
- ``nbgrader.nbgraderformat.common.jsonschema``: the module ``ValidatorBase`` calls
  ``jsonschema.validate(instance, schema)`` on, once per cell; replaced by validators built once.

Why: nbgrader opens a new ``Gradebook`` in each step of each notebook, and each pays for a new
engine, schema checks and a commit; grading a cohort pays it hundreds of times. The queries that
read and write grades, and their order, stay nbgrader's. The grading room
(``grading/autograde/converter.py``) decides when: around the grading loop of
``SandboxedAutograde``.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def fast_gradebook():
    """Make nbgrader's own gradebook and metadata steps cheap to repeat, without changing them.

    nbgrader opens a new ``Gradebook`` in each step of each notebook (nine per submission): each
    makes a new SQLAlchemy engine (so every statement is compiled again: SQLAlchemy caches compiled
    statements per engine), checks the schema of every table, lists the tables and queries and
    commits the course row; and, in ``CheckCellMetadata``, ``jsonschema.validate`` checks the schema
    itself before each cell. Meanwhile: one engine per URL, tables created once per engine, the
    table list read once and the course row checked once per engine (rows are never removed), one
    validator per schema. SQLite gradebooks in WAL mode (switched once by ``atelier grade`` before
    its grading processes start, and by :mod:`atelier.grading.course` for every cohort) are written
    with ``synchronous=NORMAL`` (commits stay atomic), and are checkpointed at the end. The
    queries that read and write grades, and their order, are nbgrader's.
    """
    import jsonschema
    import nbgrader.api
    import nbgrader.nbgraderformat.common as nbformat_common
    from sqlalchemy import event, text

    from atelier.database import wal_commits

    original_engine = nbgrader.api.create_engine
    original_create_all = nbgrader.api.Base.metadata.create_all
    original_inspect = nbgrader.api.inspect
    original_check_course = nbgrader.api.Gradebook.check_course
    original_jsonschema = nbformat_common.jsonschema
    engines: dict = {}
    created: set = set()
    tables: dict = {}
    courses: set = set()
    validators: dict = {}

    def create_engine(url, **kwargs):
        key = (str(url), tuple(sorted(kwargs.items())))
        if key not in engines:
            if str(url).startswith("sqlite") and "timeout=" not in str(url):
                # Several grading processes may write at once: wait for the lock, never fail.
                kwargs = {**kwargs, "connect_args": {"timeout": 60}}
            engine = original_engine(url, **kwargs)
            if engine.dialect.name == "sqlite":

                @event.listens_for(engine, "connect")
                def _pragmas(connection, record):
                    # The journal mode is switched once, before grading processes start
                    # (atelier.grading.courses.gradebook.use_wal): switching it here raced between
                    # them.
                    wal_commits(connection, switch=False)

            # Gradebook.close() disposes its engine; the shared one keeps its connection (closing
            # the last connection to a WAL database checkpoints it: an fsync per step).
            engine.dispose = lambda *args, **kwargs: None
            engines[key] = engine
        return engines[key]

    def create_all(bind=None, **kwargs):
        if id(bind) not in created:
            original_create_all(bind=bind, **kwargs)
            created.add(id(bind))

    class KnownTables:
        """``inspect(engine)`` as ``Gradebook()`` uses it: the tables, listed once per engine."""

        def __init__(self, engine):
            self.engine = engine

        def get_table_names(self):
            key = id(self.engine)
            if key not in tables:
                names = original_inspect(self.engine).get_table_names()
                if not names:
                    return names  # a new gradebook: nbgrader creates it, ask again next time
                tables[key] = names
            return tables[key]

    def check_course(gradebook, course_id="default_course", **kwargs):
        # Every ``Gradebook()`` makes sure its course row exists (a query and a commit); once it
        # does, it stays: the row is never removed.
        key = (id(gradebook.engine), course_id)
        if kwargs or key not in courses:
            course = original_check_course(gradebook, course_id=course_id, **kwargs)
            courses.add(key)
            return course
        return None  # nbgrader's only caller, Gradebook.__init__, ignores the result

    class CachedValidation:
        """``jsonschema`` as nbgrader's metadata checks use it, with validators built once."""

        def __getattr__(self, name):
            return getattr(jsonschema, name)

        @staticmethod
        def validate(instance, schema):
            key = id(schema)
            if key not in validators:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                validators[key] = (schema, cls(schema))
            validators[key][1].validate(instance)

    nbgrader.api.create_engine = create_engine
    nbgrader.api.Base.metadata.create_all = create_all
    nbgrader.api.inspect = KnownTables
    nbgrader.api.Gradebook.check_course = check_course
    nbformat_common.jsonschema = CachedValidation()
    try:
        yield
    finally:
        nbgrader.api.create_engine = original_engine
        nbgrader.api.Base.metadata.create_all = original_create_all
        nbgrader.api.inspect = original_inspect
        nbgrader.api.Gradebook.check_course = original_check_course
        nbformat_common.jsonschema = original_jsonschema
        for engine in engines.values():
            if engine.dialect.name == "sqlite":
                with contextlib.suppress(Exception), engine.connect() as connection:
                    connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
            type(engine).dispose(engine)
