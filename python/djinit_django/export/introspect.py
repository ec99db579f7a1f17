"""Catalog lookups compiled into SQL that runs them on the server at apply time.

Django's PostgreSQL schema editor reads the catalog while it writes some statements: the name of
a unique constraint to drop is looked up (``_constraint_names``), the sequence behind a serial
column (``_get_sequence_name``), whether a collation is deterministic. Exporting without a
database, these lookups cannot run. Instead of giving up (and handing the whole migration to
Python), the export editor answers each lookup with a stand-in name (a :class:`Lookup`, a ``str``
that Django quotes into its SQL like any name) and turns every statement that contains one into a
``DO`` block that performs the same lookup over ``pg_constraint``/``pg_index``/``pg_attribute``
when the migration is applied, then runs the statement with the names found (``format('%I')``).

What each Django 5.2 call site does with the names, and the SQL it becomes:

- ``_delete_composed_index`` (AlterUniqueTogether / AlterIndexTogether removing a set):
  exactly one name, preferring the default unique_together name when several match; otherwise
  ``Found wrong number (N) of constraints for table(cols)``, Django's ValueError text.
- ``RenameIndex`` with ``old_fields`` (an unnamed index): exactly one index, else
  ``Found wrong number (N) of indexes for table(cols).``; no-op when it already has the new name.
- ``_alter_field`` (AlterField) and ``remove_field`` (RemoveField of a ForeignKey),
  ``_delete_primary_key``: every matching name (zero or more), as Django loops over them. When an
  AlterField dropped the old field's foreign key, Django re-creates it only if one was found: the
  re-creation is conditional on the count the lookup recorded (``djinit.lookup_<n>`` setting).
- ``_get_sequence_name`` (AutoField type changes): the first sequence owned by the column, if any.
- ``_is_collation_deterministic`` (``_like`` indexes on columns with a ``db_collation``): the
  index is created only when the collation exists and is deterministic.

``strict=True`` schema alterations (never used by migration operations) still need a database.
The catalog query mirrors ``DatabaseIntrospection.get_constraints`` of Django 5.2 (constraints,
then indexes whose name is not a constraint's; columns in key order; an index's ``type`` is
``idx`` for a plain btree index without options, else its access method).
"""

from django.db.backends.ddl_references import Statement

from .literals import NeedsDatabase, quote

TOKEN_PREFIX = "djinit_lookup_"
SETTING_PREFIX = "djinit.lookup_"
DOLLAR = "$djinit$"


class Lookup(str):
    """A name Django would have read from the catalog, standing in for it in SQL text."""

    def __new__(cls, number, query):
        self = super().__new__(cls, "%s%d" % (TOKEN_PREFIX, number))
        self.number = number
        self.query = query  # SELECT returning the names, one text column
        self.exactly_one = None  # (message format with %s for the count, table, columns)
        self.prefer = None  # a name that wins when it is among several (unique_together default)
        self.unless_named = None  # RenameIndex: nothing to do when the name is already this
        self.first_only = False  # _get_sequence_name: the first match or none
        self.record = False  # store the count in the djinit.lookup_<n> setting
        return self


def literal(value):
    return quote(str(value))


def text_array(values):
    return "ARRAY[%s]::text[]" % ", ".join(literal(v) for v in values)


def catalog_sql(table):
    """Rows (name, columns, primary_key, is_unique, foreign_key, is_check, is_index, type) of
    ``get_constraints(table)``."""
    t = literal(table)
    return (
        "SELECT c.conname::text AS name, "
        "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "ORDER BY k.ord) AS columns, "
        "c.contype = 'p' AS primary_key, c.contype IN ('p', 'u') AS is_unique, "
        "c.contype = 'f' AS foreign_key, c.contype = 'c' AS is_check, false AS is_index, "
        "NULL::text AS type "
        "FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid "
        "WHERE r.relname = %(t)s AND pg_catalog.pg_table_is_visible(r.oid) "
        "UNION ALL "
        "SELECT x.relname::text, CASE WHEN cardinality(x.cols) = 1 AND x.cols[1] IS NULL "
        "THEN ARRAY[]::text[] ELSE x.cols END, x.indisprimary, x.indisunique, false, false, true, "
        "CASE WHEN x.amname = 'btree' AND right(x.relname, 6) <> '_btree' AND x.reloptions IS NULL "
        "THEN 'idx' ELSE x.amname::text END "
        "FROM (SELECT ic.relname, i.indisprimary, i.indisunique, am.amname, ic.reloptions, "
        "ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
        "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "ORDER BY k.ord) AS cols "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class r ON r.oid = i.indrelid "
        "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_catalog.pg_am am ON am.oid = ic.relam "
        "WHERE r.relname = %(t)s AND pg_catalog.pg_table_is_visible(r.oid) "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = r.oid "
        "AND c.conname = ic.relname)) x" % {"t": t}
    )


def constraint_names_sql(table, columns, unique, primary_key, index, foreign_key, check, type_, exclude):
    """``_constraint_names``' filters over ``catalog_sql``."""
    where = []
    if columns is not None:
        where.append("columns = %s" % text_array(columns))
    for column, value in (
        ("is_unique", unique),
        ("primary_key", primary_key),
        ("is_index", index),
        ("is_check", check),
    ):
        if value is not None:
            where.append("%s = %s" % (column, "true" if value else "false"))
    if foreign_key is not None:  # Django: any non-None value requires a foreign key
        where.append("foreign_key")
    if type_ is not None:
        where.append("type = %s" % literal(type_))
    if exclude:
        where.append("name <> ALL(%s)" % text_array(sorted(exclude)))
    return "SELECT name FROM (%s) AS djinit_catalog%s ORDER BY is_index, name" % (
        catalog_sql(table),
        (" WHERE " + " AND ".join(where)) if where else "",
    )


def sequence_sql(table, column):
    """``DatabaseIntrospection.get_sequences(table)`` filtered to ``column``."""
    return (
        "SELECT s.relname::text FROM pg_catalog.pg_class s "
        "JOIN pg_catalog.pg_depend d ON d.objid = s.oid "
        "AND d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass "
        "JOIN pg_catalog.pg_attribute a ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
        "JOIN pg_catalog.pg_class tbl ON tbl.oid = d.refobjid AND tbl.relname = %s "
        "AND pg_catalog.pg_table_is_visible(tbl.oid) "
        "WHERE s.relkind = 'S' AND a.attname = %s" % (literal(table), literal(column))
    )


def _quote_body_literal(text):
    return "'" + text.replace("'", "''") + "'"


def do_block(statement, lookup):
    """``statement`` (containing ``"<lookup>"``) as a DO block that runs ``lookup.query`` and then
    the statement for the names found, as Django's call site would."""
    template = statement.rstrip().rstrip(";").replace("%", "%%").replace('"%s"' % lookup, "%I")
    if TOKEN_PREFIX in template:
        # Two different lookups in one statement: no Django 5.2 call site does this.
        raise RuntimeError("a statement uses several catalog lookups: %s" % statement)
    uses = template.count("%I")
    body = ["DECLARE", "  names text[] := ARRAY(%s);" % lookup.query, "  object_name text;", "BEGIN"]
    if lookup.prefer is not None:
        body.append(
            "  IF %s = ANY(names) THEN names := ARRAY[%s]; END IF;"
            % (literal(lookup.prefer), literal(lookup.prefer))
        )
    if lookup.exactly_one is not None:
        message, table, columns = lookup.exactly_one
        body.append(
            "  IF cardinality(names) <> 1 THEN RAISE EXCEPTION USING MESSAGE = format(%s, cardinality(names), %s, %s), "
            "HINT = 'Django raises ValueError here too: the database does not match the migration history.'; END IF;"
            % (_quote_body_literal(message), literal(table), literal(columns))
        )
    if lookup.unless_named is not None:
        body.append("  IF names[1] = %s THEN RETURN; END IF;" % literal(lookup.unless_named))
    if lookup.first_only:
        body.append("  names := names[1:1];")
    if lookup.record:
        body.append(
            "  PERFORM pg_catalog.set_config(%s, cardinality(names)::text, false);"
            % literal("%s%d" % (SETTING_PREFIX, lookup.number))
        )
    body.append("  FOREACH object_name IN ARRAY names LOOP")
    body.append(
        "    EXECUTE format(%s%s);" % (_quote_body_literal(template), ", object_name" * uses)
    )
    body.append("  END LOOP;")
    body.append("END")
    return _wrap(body)


def do_if(condition, statement):
    """``statement`` run only when the SQL boolean ``condition`` is true at apply time."""
    body = [
        "BEGIN",
        "  IF %s THEN" % condition,
        "    EXECUTE %s;" % _quote_body_literal(statement.rstrip().rstrip(";")),
        "  END IF;",
        "END",
    ]
    return _wrap(body)


def _wrap(body):
    text = "\n".join(body)
    if DOLLAR in text:
        raise RuntimeError("statement contains %s" % DOLLAR)
    return "DO %s\n%s\n%s;" % (DOLLAR, text, DOLLAR)


class Conditional(Statement):
    """A deferred-SQL-compatible statement run only when ``condition`` holds at apply time
    (column/table renames and removals still reach the wrapped statement)."""

    def __init__(self, inner, condition):
        super().__init__("%(inner)s", inner=inner)
        self.condition = condition

    def __str__(self):
        return do_if(self.condition, str(self.parts["inner"]))


class LookupEditorMixin:
    """Mixed into the connection's schema editor class during export (see ``offline``)."""

    def _next_lookup(self, query):
        self._lookup_count = getattr(self, "_lookup_count", 0) + 1
        lookup = Lookup(self._lookup_count, query)
        self._lookups = getattr(self, "_lookups", {})
        self._lookups[str(lookup)] = lookup
        return lookup

    # -- the lookups --

    def _constraint_names(
        self,
        model,
        column_names=None,
        unique=None,
        primary_key=None,
        index=None,
        foreign_key=None,
        check=None,
        type_=None,
        exclude=None,
    ):
        from django.db.backends.utils import truncate_name

        if column_names is not None:  # as Django converts them
            column_names = [
                (
                    self.connection.introspection.identifier_converter(
                        truncate_name(name, self.connection.ops.max_name_length())
                    )
                    if self.connection.features.truncates_names
                    else self.connection.introspection.identifier_converter(name)
                )
                for name in column_names
            ]
        lookup = self._next_lookup(
            constraint_names_sql(
                model._meta.db_table, column_names, unique, primary_key, index, foreign_key, check, type_, exclude
            )
        )
        lookup.table = model._meta.db_table
        lookup.columns = column_names
        altering = getattr(self, "_altering", None)
        if (
            altering is not None
            and foreign_key
            and altering[0] is model
            and column_names == [altering[1].column]
        ):
            # _alter_field's lookup of the old field's foreign keys: whether it found any decides
            # whether the new foreign key is created (Django's ``fks_dropped``).
            lookup.record = True
            self._fk_lookup = lookup
        return [lookup]

    def _get_sequence_name(self, table, column):
        lookup = self._next_lookup(sequence_sql(table, column))
        lookup.first_only = True
        return lookup

    def _is_collation_deterministic(self, collation_name):
        # Only reached from _create_like_index_sql, which wraps the index in a condition.
        return True

    # -- call sites whose use of the names is more than "each of them" --

    def _delete_composed_index(self, model, fields, constraint_kwargs, sql):
        # Django 5.2's BaseDatabaseSchemaEditor._delete_composed_index, with the count check
        # and the default-name preference moved into the DO block.
        meta_constraint_names = {constraint.name for constraint in model._meta.constraints}
        meta_index_names = {constraint.name for constraint in model._meta.indexes}
        columns = [model._meta.get_field(field).column for field in fields]
        [lookup] = self._constraint_names(
            model,
            columns,
            exclude=meta_constraint_names | meta_index_names,
            **constraint_kwargs,
        )
        if (
            constraint_kwargs.get("unique") is True
            and self.connection.features.allows_multiple_constraints_on_same_fields
        ):
            lookup.prefer = str(self._unique_constraint_name(model._meta.db_table, columns, quote=False))
        lookup.exactly_one = (
            "Found wrong number (%s) of constraints for %s(%s)",
            model._meta.db_table,
            ", ".join(columns),
        )
        self.execute(self._delete_constraint_sql(sql, model, lookup))

    def rename_index(self, model, old_index, new_index):
        lookup = getattr(self, "_lookups", {}).get(str(old_index.name))
        if isinstance(old_index.name, Lookup) and lookup is not None:
            # RenameIndex(old_fields=...): the operation checked len() == 1 on our stand-in and
            # compared it with the new name; both checks happen at apply time instead.
            lookup.exactly_one = (
                "Found wrong number (%s) of indexes for %s(%s).",
                lookup.table,
                ", ".join(lookup.columns or []),
            )
            lookup.unless_named = new_index.name
        return super().rename_index(model, old_index, new_index)

    def _alter_field(self, model, old_field, new_field, old_type, new_type, old_db_params, new_db_params, strict=False):
        if strict:
            raise NeedsDatabase("a strict schema alteration checks the catalog while exporting")
        self._altering = (model, old_field)
        self._fk_lookup = None
        try:
            return super()._alter_field(
                model, old_field, new_field, old_type, new_type, old_db_params, new_db_params, strict
            )
        finally:
            self._altering = None
            self._fk_lookup = None

    def _create_fk_sql(self, model, field, suffix):
        statement = super()._create_fk_sql(model, field, suffix)
        lookup = getattr(self, "_fk_lookup", None)
        if lookup is not None and suffix == "_fk_%(to_table)s_%(to_column)s":
            # Django re-creates the foreign key only when the old one was found and dropped.
            condition = "coalesce(pg_catalog.current_setting(%s, true), '0')::int > 0" % literal(
                "%s%d" % (SETTING_PREFIX, lookup.number)
            )
            return Conditional(statement, condition)
        return statement

    def _create_like_index_sql(self, model, field):
        statement = super()._create_like_index_sql(model, field)
        collation = getattr(field, "db_collation", None)
        if not collation and field.is_relation:
            collation = getattr(field.target_field, "db_collation", None)
        if statement is None or not collation:
            return statement
        # Django skips the index when the collation is missing or nondeterministic.
        condition = (
            "coalesce((SELECT collisdeterministic FROM pg_catalog.pg_collation WHERE collname = %s LIMIT 1), false)"
            % literal(collation)
        )
        return Conditional(statement, condition)

    # -- every statement that names a lookup becomes a DO block --

    def execute(self, sql, params=()):
        before = len(self.collected_sql)
        result = super().execute(sql, params)
        lookups = getattr(self, "_lookups", {})
        if lookups and len(self.collected_sql) > before:
            text = self.collected_sql[-1]
            if TOKEN_PREFIX in text:
                for token, lookup in lookups.items():
                    if '"%s"' % token in text:
                        self.collected_sql[-1] = do_block(text, lookup)
                        break
        return result
