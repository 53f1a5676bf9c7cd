import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def render_item(type_, obj, autogen_context):
    """Render the app's column types as plain SQLAlchemy ones, so migrations stand alone."""
    from webapp.db_types import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=get_metadata(), literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection, sqlite_table_rebuilds(connection) as after_step:
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            render_item=render_item,
            on_version_apply=after_step,
            **conf_args,
        )

        with context.begin_transaction():
            context.run_migrations()


@contextmanager
def sqlite_table_rebuilds(connection):
    """Let SQLite batch migrations rebuild tables without losing rows or reusing ids.

    A batch migration rebuilds a table by copying it and dropping the
    original. The app turns foreign keys on for every SQLite connection, and
    with them on, dropping ``users`` would cascade into every table that
    refers to it; SQLite ignores the pragma inside a transaction, so it is set
    around the run. The copy also restarts an AUTOINCREMENT counter at the
    largest id left, which would hand out deleted users' ids again. After
    every step the references are checked and no counter is left lower than
    before it: that is the callback this yields for ``on_version_apply``
    (None on other databases).
    """
    if connection.dialect.name != "sqlite":
        yield None
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    counters = _sqlite_counters(connection)
    connection.commit()  # Alembic's transaction must be the outermost one

    def after_step(**_kwargs) -> None:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows with dangling references: {broken[:10]}")
        _raise_sqlite_counters(connection, counters)
        counters.update(_sqlite_counters(connection))

    try:
        yield after_step
    finally:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _sqlite_counters(connection) -> dict:
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).first()
    if not exists:
        return {}
    return dict(connection.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all())


def _raise_sqlite_counters(connection, floors: dict) -> None:
    now = _sqlite_counters(connection)
    for name, floor in floors.items():
        autoincrement = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            " AND upper(sql) LIKE '%AUTOINCREMENT%'",
            (name,),
        ).first()
        if autoincrement and now.get(name, 0) < floor:
            connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
            connection.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, floor)
            )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
