"""Per-migration SQL from Django's own machinery.

For a migration and a project state this runs ``Migration.apply`` / ``Migration.unapply`` with
``schema_editor(collect_sql=True)``, exactly as ``sqlmigrate`` does, and splits the collected
statements into steps at the operation markers Django writes into ``collected_sql``:

- ``{"sql": ["stmt;", ...]}``: statements as ``sqlmigrate`` prints them, one entry per statement
  Django executes separately (deferred SQL last, as in a real run); catalog lookups are ``DO``
  blocks (see ``introspect``);
- ``{"python": "...", "callable": "...", "guard": {...} | null}``: an operation Django cannot write
  as SQL (see ``guards``); ``reason`` says why when the whole migration is exported as Python
  because its SQL depends on something only known when it runs;
- ``{"noop": "..."}``: ``RunPython.noop`` in that direction.

An atomic migration whose SQL contains transaction control (``COMMIT``, ``BEGIN``, ...) is an
export error: it would commit part of the migration (see ``sqlscan``).
"""

from django.db import migrations as m
from django.db.migrations.exceptions import IrreversibleError

from . import guards, sqlscan

CANNOT = "-- THIS OPERATION CANNOT BE WRITTEN AS SQL"
NOOP = "-- (no-op)"


class ExportError(RuntimeError):
    pass


def _editor(connection, atomic):
    """A collecting schema editor used without ``with``: entering it would open a transaction
    (and so a connection). ``atomic_migration`` keeps the value Django would give it, so an atomic
    migration's operations are not wrapped in ``atomic()`` either."""
    editor = connection.schema_editor(collect_sql=True, atomic=atomic)
    editor.deferred_sql = []
    return editor


def _finish(editor):
    for sql in editor.deferred_sql:
        editor.execute(sql)
    editor.deferred_sql = []
    return editor.collected_sql


def _split(collected, operations, migration, backwards):
    """Cut ``collected`` at the per-operation markers into steps."""
    steps = []
    i = 0
    n = len(collected)

    def add_sql(stmt):
        if steps and "sql" in steps[-1]:
            steps[-1]["sql"].append(stmt)
        else:
            steps.append({"sql": [stmt]})

    for k, op in enumerate(operations):
        header = ["--", "-- %s" % op.describe(), "--"]
        if collected[i : i + 3] != header:
            raise ExportError(
                "%s.%s: unexpected collected SQL layout at operation %d (%s)"
                % (migration.app_label, migration.name, k, op.describe())
            )
        i += 3
        if i < n and collected[i] == CANNOT:
            i += 1
            steps.append(guards.python_step(op, backwards))
            continue
        next_header = "-- %s" % operations[k + 1].describe() if k + 1 < len(operations) else None
        while i < n:
            if (
                next_header is not None
                and collected[i] == "--"
                and i + 1 < n
                and collected[i + 1] == next_header
                and i + 2 < n
                and collected[i + 2] == "--"
            ):
                break
            if collected[i] != NOOP:
                add_sql(collected[i])
            i += 1
    # Anything left after the last operation's marker handling is deferred SQL.
    while i < n:
        if collected[i] != NOOP:
            add_sql(collected[i])
        i += 1
    return steps


def _not_sql(migration, backwards, error):
    """The whole migration as one Python step (lockedmigrate refuses it without Python; it is
    never silently skipped)."""
    from .offline import NeedsDatabase

    return [
        {
            "python": "%s %s.%s as a whole: %s"
            % ("unapplying" if backwards else "applying", migration.app_label, migration.name, error),
            "callable": None,
            "guard": None,
            "needs_database": isinstance(error, NeedsDatabase),
        }
    ]


def _check_transaction_control(migration, steps, backwards):
    if not migration.atomic:
        return
    for step in steps:
        for statement in step.get("sql", ()):
            found = sqlscan.transaction_control(statement)
            if found:
                raise ExportError(
                    "migration %s.%s is atomic but its %s SQL contains %s (%s): it would commit part "
                    "of the migration outside its transaction. Remove the transaction control from "
                    "the RunSQL, or set atomic = False on the migration."
                    % (
                        migration.app_label,
                        migration.name,
                        "backward" if backwards else "forward",
                        found,
                        " ".join(statement.split())[:120],
                    )
                )


def forwards(connection, migration, state):
    """Forward steps from ``state`` (the state before the migration, consumed); returns
    (steps, state after the migration)."""
    from .offline import NeedsDatabase, NeedsPython

    before = state.clone()
    editor = _editor(connection, migration.atomic)
    try:
        state = migration.apply(state, editor, collect_sql=True)
    except (NeedsDatabase, NeedsPython) as e:
        return _not_sql(migration, False, e), migration.mutate_state(before, preserve=False)
    steps = _split(_finish(editor), list(migration.operations), migration, False)
    _check_transaction_control(migration, steps, False)
    return steps, state


def backwards(connection, migration, state_before):
    """Backward steps from ``state_before`` (the state before the migration, not modified), or
    None when Django would raise IrreversibleError."""
    if not all(op.reversible for op in migration.operations):
        return None
    from .offline import NeedsDatabase, NeedsPython

    editor = _editor(connection, migration.atomic)
    # Rendered once here, the intermediate states unapply() clones are reloaded model by model
    # instead of rendered from scratch twice per operation (about 6 s -> 4 s of CPU for the
    # real-app fixture's 101 migrations); the SQL is the same (a test compares every migration
    # with sqlmigrate).
    state_before.apps
    try:
        migration.unapply(state_before, editor, collect_sql=True)
    except IrreversibleError:
        return None
    except (NeedsDatabase, NeedsPython) as e:
        return _not_sql(migration, True, e)
    steps = _split(_finish(editor), list(reversed(migration.operations)), migration, True)
    _check_transaction_control(migration, steps, True)
    return steps


def soft_applied_check(migration, state_after):
    """What ``migrate --fake-initial`` (``MigrationExecutor.detect_soft_applied``) would look
    for, as data: tables and (table, column) pairs; None when the migration is not eligible."""
    if migration.initial is None:
        if any(app == migration.app_label for app, _ in migration.dependencies):
            return None
    elif migration.initial is False:
        return None
    from django.apps import apps as global_apps

    apps = state_after.apps
    tables, columns = [], []

    def resolve(model):
        if model._meta.swapped:
            model = global_apps.get_model(model._meta.swapped)
        if model._meta.proxy or not model._meta.managed:
            return None
        return model

    for op in migration.operations:
        if isinstance(op, m.CreateModel):
            model = resolve(apps.get_model(migration.app_label, op.name))
            if model is not None:
                tables.append(model._meta.db_table)
        elif isinstance(op, m.AddField):
            model = resolve(apps.get_model(migration.app_label, op.model_name))
            if model is None:
                continue
            field = model._meta.get_field(op.name)
            if field.many_to_many:
                tables.append(field.remote_field.through._meta.db_table)
            else:
                columns.append([model._meta.db_table, field.column])
    return {"tables": tables, "columns": columns}
