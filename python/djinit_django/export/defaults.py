"""Defaults that Django computes at migrate time, exported so the bundle is reproducible.

When a migration adds a NOT NULL column or makes one NOT NULL, Django writes the field's default
into the SQL as a literal (``ADD COLUMN ... DEFAULT '...'``, ``UPDATE ... SET col = '...'``). For a
time default (``default=timezone.now``, ``auto_now``/``auto_now_add``) that literal is the moment
the SQL was generated: Django's own ``auth.0005`` backwards embeds the export time, and two exports
of the same project would differ. The export editor writes the moment of *applying* instead, in
SQL, which is what ``manage.py migrate`` does:

- an aware datetime (``USE_TZ = True``): ``now()`` (timestamptz);
- a naive datetime, a date or a time: ``now()`` in the ``TIME_ZONE`` setting, cast as needed
  (Django's naive values are local time in ``TIME_ZONE``).

``now()`` is the start of the migration's transaction: one value for every row, as Django uses
one value. Any other callable default whose value changes between two calls (``uuid.uuid4``, a
random token) cannot be written as SQL ahead of time; the migration is exported as Python
(``NeedsPython``), so a bundle never carries a value that differs from export to export.
"""

import datetime

from django.conf import settings
from django.utils import timezone

from .literals import NeedsPython, SqlExpression

TIME_CALLABLES = (
    timezone.now,
    timezone.localtime,
    timezone.localdate,
    datetime.datetime.now,
    datetime.datetime.today,
    datetime.date.today,
)


def _local_now():
    from .introspect import literal

    return "(now() AT TIME ZONE %s)" % literal(settings.TIME_ZONE or "UTC")


def time_expression(value):
    """The SQL for a time value Django computed from the clock, by its type."""
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            return SqlExpression("now()")
        return SqlExpression(_local_now())
    if isinstance(value, datetime.date):
        return SqlExpression("%s::date" % _local_now())
    if isinstance(value, datetime.time):
        return SqlExpression("%s::time" % _local_now())
    return None


def _is_time_default(field):
    if field.has_default():
        return callable(field.default) and any(field.default == f for f in TIME_CALLABLES)
    if field.generated:
        return False
    if not field.null and field.blank and field.empty_strings_allowed:
        return False
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


class DefaultsEditorMixin:
    def effective_default(self, field):
        value = super().effective_default(field)
        if value is None:
            return value
        if _is_time_default(field):
            expression = time_expression(value)
            if expression is not None:
                return expression
        if field.has_default() and callable(field.default):
            if self._effective_default(field) != self._effective_default(field):
                raise NeedsPython(
                    "the default of %s.%s (%s) changes from call to call; Django computes it when "
                    "the migration runs"
                    % (
                        field.model._meta.label if getattr(field, "model", None) else "?",
                        field.name,
                        getattr(field.default, "__qualname__", repr(field.default)),
                    )
                )
        return value
