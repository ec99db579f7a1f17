"""What the exporter's SQL is made of, below everything else in the package: literals quoted as
psycopg quotes them (``quote``), SQL text that is not a literal (``SqlExpression``), and the two
reasons an operation's SQL cannot be exported (``NeedsDatabase``, ``NeedsPython``). The editor
mixins (``defaults``, ``introspect``) and the offline connection (``offline``) all import from here,
and this module imports none of them.
"""


class NeedsDatabase(RuntimeError):
    """An operation's SQL depends on the database in a way the export cannot compile."""


class NeedsPython(RuntimeError):
    """An operation's SQL depends on a value only Python can compute when it runs."""


class SqlExpression:
    """A value that is SQL text, not a literal (``quote`` writes it as is)."""

    def __init__(self, sql):
        self.sql = sql

    def __repr__(self):
        return "SqlExpression(%r)" % self.sql


def quote(value):
    """A literal, as psycopg quotes it client-side (no connection: default adapters)."""
    if isinstance(value, SqlExpression):
        return value.sql
    try:
        from psycopg import sql
    except ImportError:  # psycopg2
        from psycopg2.extensions import adapt

        return adapt(value).getquoted().decode()
    return sql.quote(value)
