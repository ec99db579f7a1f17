"""Export without a database: a connection whose server version is fixed.

Django's PostgreSQL backend learns the server version (``connection.pg_version``) by connecting,
and a few SQL details depend on it (PostgreSQL 15/16/17 features). The exporter pins the version
instead, so a Docker build needs no database:

- ``--pg-version`` on the command line, else the ``DJINIT_EXPORT_PG_VERSION`` setting, else 14
  (the oldest PostgreSQL Django 5.2 supports: the SQL then runs on every supported server).
  ``lockedmigrate`` refuses a server older than the version the bundle was exported for.
- Statements with parameters are merged client-side without a connection (``compose_sql``),
  as psycopg 3 does it (psycopg2's ``adapt`` when only psycopg2 is installed).
- While exporting, any attempt to open a connection fails with a clear error instead of
  silently contacting a database (so a bundle never depends on the build machine's data).
- The schema editor is the connection's own class with two mixins: catalog lookups become SQL
  that looks names up at apply time (``introspect``), and defaults computed from the clock become
  ``now()`` (``defaults``).
- psycopg 3 (or psycopg2) must be importable: Django's PostgreSQL backend needs it, and literals
  are quoted the way it quotes them. ``pip install 'djinit[export]'`` installs it.
"""

import contextlib

from .literals import NeedsDatabase, NeedsPython, quote  # noqa: F401 (re-exported)

DEFAULT_PG_VERSION = 14


MISSING_PSYCOPG = (
    "djinit_export needs psycopg 3 (or psycopg2) to load Django's PostgreSQL backend and quote SQL "
    "literals as Django does: pip install 'djinit[export]'"
)


def require_psycopg():
    """Raise ``ImportError`` with the install hint when neither psycopg nor psycopg2 imports."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise ImportError(MISSING_PSYCOPG) from None


def parse_pg_version(value):
    """``15``, ``"15"``, ``"15.4"`` or ``150004`` -> server_version_num-style int (150000...)."""
    text = str(value).strip()
    try:
        if "." in text:
            major, minor = text.split(".", 1)
            major, minor = int(major), int(minor.split(".")[0])
        else:
            number = int(text)
            if number >= 10000:
                return number
            major, minor = number, 0
    except ValueError:
        raise ValueError("PostgreSQL version must look like 15 or 15.4, got %r" % (value,))
    if major < 10:
        raise ValueError("PostgreSQL version %r is too old" % (value,))
    return major * 10000 + minor


@contextlib.contextmanager
def offline(connection, pg_version):
    """Pin ``connection.pg_version`` and forbid connecting for the duration."""
    if connection.vendor != "postgresql":
        raise NeedsDatabase(
            "database %r uses the %s backend; djinit bundles are for PostgreSQL only"
            % (connection.alias, connection.vendor)
        )
    saved = dict(connection.__dict__)

    def refuse(*args, **kwargs):
        raise NeedsDatabase(
            "an operation tried to open a database connection during export "
            "(djinit_export works without a database; this operation cannot be exported)"
        )

    from .defaults import DefaultsEditorMixin
    from .introspect import LookupEditorMixin

    connection.__dict__["pg_version"] = pg_version
    connection.SchemaEditorClass = type(
        "Export" + connection.SchemaEditorClass.__name__,
        (LookupEditorMixin, DefaultsEditorMixin, connection.SchemaEditorClass),
        {},
    )
    connection.ensure_connection = refuse
    connection.connect = refuse
    ops = connection.ops
    ops.compose_sql = compose_sql
    try:
        yield connection
    finally:
        del ops.compose_sql
        connection.__dict__.clear()
        connection.__dict__.update(saved)


def compose_sql(sql, params):
    """``DatabaseOperations.compose_sql`` without a connection: psycopg's client-side merging
    (``ClientCursor.mogrify``) is ``%s``/``%(name)s`` substitution of quoted literals, with
    ``%%`` standing for ``%``: exactly Python's ``%`` operator on quoted values."""
    if params is None:
        return sql
    if isinstance(params, dict):
        return sql % {k: quote(v) for k, v in params.items()}
    return sql % tuple(quote(v) for v in params)
