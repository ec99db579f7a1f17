"""Which SQL of a migration is valid for which set of applied migrations.

A migration's SQL is computed from its **ancestors' state**, as ``sqlmigrate`` does. ``migrate``
computes it from the state of every migration applied at that moment, and that can differ: when
sibling migrations of a merged branch alter the same columns (django-celery-beat's two
``0006_auto_*``), the second one applied finds the columns already altered and does nothing.
Which one is second depends on the target. So for every migration the exporter also asks:

- forwards: does the SQL change when other migrations that are neither its ancestors nor its
  descendants are applied too (Django's state then includes them, wherever they are in the plan)?
- backwards: does it change when migrations before it in the full plan that are not its
  ancestors are applied (``migrate`` unapplies from the state of the applied migrations before
  it)?

Checked cheaply first: from the operations alone, whether any of them changes a model the
migration's SQL reads; then the state with all of them applied is compared model by model with
the ancestors' state; only when a model that differs is one the migration's operations touch (or
relates to one) is the SQL computed again. When that SQL differs, each candidate is tried on its
own (with its ancestors) to find the **relevant** migrations ``R``; the bundle records ``R``
(``depends_on``) and the SQL for every consistent subset of ``R`` whose SQL differs from the
ancestors' (``variants``). ``lockedmigrate`` picks the variant whose ``applied`` set equals the
part of ``R`` applied at that moment (forwards) or at the start of the run (backwards), else the
ancestors' SQL.

Limits (an export error, never a silent guess): more than ``MAX_RELEVANT`` relevant migrations
for one migration, or SQL with all of ``R`` applied that differs from the SQL with everything
applied (an effect only a combination of migrations has).
"""

import itertools

from django.db.migrations.operations.fields import FieldOperation
from django.db.migrations.operations.models import (
    CreateModel,
    IndexOperation,
    ModelOperation,
    RenameModel,
)
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState
from django.db.migrations.utils import resolve_relation

MAX_RELEVANT = 4


class VariantError(RuntimeError):
    pass


class Plan:
    """The migration graph with ``migrate``'s order for a fresh database."""

    def __init__(self, loader, migrations):
        self.loader = loader
        self.graph = loader.graph
        self.keys = [(m.app_label, m.name) for m in migrations]
        self.order = {k: i for i, k in enumerate(self.keys)}
        self._ancestors = {}
        self._descendants = {}
        # For the quick check: the models each migration changes, and for each model the models
        # whose relations (as any operation declares them) point at it. A RenameModel anywhere
        # moves relations without declaring them: then only the state comparison is trusted.
        self.changes = {(m.app_label, m.name): _changed_by(m) for m in migrations}
        self.pointing = None
        if not any(isinstance(op, RenameModel) for m in migrations for op in m.operations):
            self.pointing = {}
            for m in migrations:
                for op in m.operations:
                    own = _own_models(op, m.app_label) or set()
                    for target, _ in _written_relations(op, m.app_label):
                        self.pointing.setdefault(target, set()).update(own)

    def cannot_matter(self, migration, pool):
        """True when no migration of ``pool`` changes a model the migration's SQL reads (its
        operations' models, their relations' targets, the models pointing at them): then the
        state comparison is not needed."""
        if self.pointing is None:
            return False
        operations = _schema_operations(migration)
        if operations is None:
            return False
        read = set()
        for op, own in operations:
            read |= own
            for model in own:
                read |= self.pointing.get(model, set())
            read.update(target for target, _ in _written_relations(op, migration.app_label))
        for key in pool:
            changes = self.changes[key]
            if changes is None or changes & read:
                return False
        return True

    def ancestors(self, key):
        if key not in self._ancestors:
            self._ancestors[key] = frozenset(self.graph.forwards_plan(key)) - {key}
        return self._ancestors[key]

    def descendants(self, key):
        if key not in self._descendants:
            self._descendants[key] = frozenset(self.graph.backwards_plan(key)) - {key}
        return self._descendants[key]

    def closure(self, keys):
        out = set(keys)
        for k in keys:
            out |= self.ancestors(k)
        return out

    def pool(self, key, backwards):
        """Migrations whose being applied can change ``key``'s SQL in that direction."""
        ancestors = self.ancestors(key)
        if backwards:
            before = self.keys[: self.order[key]]
            return {k for k in before if k not in ancestors}
        descendants = self.descendants(key)
        return {k for k in self.keys if k != key and k not in ancestors and k not in descendants}

    def state_of(self, keys):
        """The project state after ``keys``, applied in plan order (as ``migrate`` builds it)."""
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        for k in sorted(keys, key=self.order.__getitem__):
            self.graph.nodes[k].mutate_state(state, preserve=False)
        return state


def _changed(a, b):
    out = set()
    for k in set(a.models) | set(b.models):
        x, y = a.models.get(k), b.models.get(k)
        if x is None or y is None or x != y:
            out.add(k)
    return out


def _own_models(op, app_label):
    """The models an operation alters (None: an operation this module does not know)."""
    if isinstance(op, RenameModel):
        return {(app_label, op.old_name_lower), (app_label, op.new_name_lower)}
    if isinstance(op, (FieldOperation, IndexOperation)):
        return {(app_label, op.model_name_lower)}
    if isinstance(op, ModelOperation):
        return {(app_label, op.name_lower)}
    return None


def _schema_operations(migration):
    """``(operation, models it alters)`` for each operation whose SQL comes from the state (not
    RunPython/RunSQL); None when one of them is an operation this module does not know."""
    out = []
    for op in migration.operations:
        if isinstance(op, (RunPython, RunSQL)):
            continue
        own = _own_models(op, migration.app_label)
        if own is None:
            return None
        out.append((op, own))
    return out


def _changed_by(migration):
    """The models a migration's operations change (None: not known)."""
    operations = _schema_operations(migration)
    if operations is None:
        return None
    return set().union(*(own for _, own in operations))


def _relations(key, fields):
    """``(target model, to_fields)`` of the relational fields among ``fields`` of model ``key``;
    M2M through models count as targets with their primary key."""
    for field in fields:
        remote = field.remote_field
        if remote is None:
            continue
        yield resolve_relation(remote.model, *key), tuple(getattr(field, "to_fields", None) or (None,))
        through = getattr(remote, "through", None)
        if through:
            yield resolve_relation(through, *key), (None,)


def _pointed_at(models):
    """Models the given ``(key, model state)`` pairs point at (relations, bases)."""
    out = set()
    for key, model in models:
        out.update(target for target, _ in _relations(key, model.fields.values()))
        for base in model.bases:
            if isinstance(base, str) and "." in base:
                out.add(resolve_relation(base, *key))
    return out


def _referenced(state, key, to_fields):
    """What a relation to ``key`` needs from it: its table and the referenced fields."""
    model = state.models.get(key)
    if model is None:
        return None
    names = [n for n in to_fields if n] or [n for n, f in model.fields.items() if getattr(f, "primary_key", False)]
    return (
        model.options.get("db_table"),
        tuple((n, model.fields[n].deconstruct()[1:] if n in model.fields else None) for n in names),
    )


def _written_relations(op, app_label):
    """Relations whose SQL an operation writes (new or altered fields, created models)."""
    if isinstance(op, CreateModel):
        key = (app_label, op.name_lower)
        yield from _relations(key, [f for _, f in op.fields])
        for base in op.bases:
            if isinstance(base, str) and "." in base:
                yield resolve_relation(base, *key), (None,)
    elif getattr(op, "field", None) is not None:
        yield from _relations((app_label, op.model_name_lower), [op.field])


def _reaches_back(op, app_label, state, other):
    """Whether the operation's SQL can involve relations pointing at its model. A field
    operation does only for a primary key or unique field (Django alters or re-creates the
    foreign keys to it when its type changes); model operations may (rename, delete, table)."""
    if not isinstance(op, FieldOperation):
        return True
    key = (app_label, op.model_name_lower)
    fields = [getattr(op, "field", None)]
    for s in (state, other):
        model = s.models.get(key)
        if model is not None:
            fields.append(model.fields.get(op.name_lower) or model.fields.get(op.name))
            if hasattr(op, "old_name"):
                fields.append(model.fields.get(op.old_name))
    return any(f is not None and (f.primary_key or f.unique) for f in fields)


def may_differ(migration, state, other):
    """False when ``other`` cannot change the migration's SQL compared with ``state``. The SQL of
    an operation reads the models it alters, the tables and referenced columns of the models its
    new fields point at, and the models that point at the models it alters (reverse relations:
    foreign keys to a primary key whose type changes, a renamed table, ...)."""
    changed = _changed(state, other)
    if not changed:
        return False
    pointed_at = None
    for op in migration.operations:
        if isinstance(op, (RunPython, RunSQL)):
            continue  # their SQL (or Python) does not come from the state
        own = _own_models(op, migration.app_label)
        if own is None or own & changed:
            return True
        for target, to_fields in _written_relations(op, migration.app_label):
            if target in changed and _referenced(state, target, to_fields) != _referenced(
                other, target, to_fields
            ):
                return True
        if not _reaches_back(op, migration.app_label, state, other):
            continue
        if pointed_at is None:
            pointed_at = _pointed_at(
                (key, model)
                for key in changed
                for model in (state.models.get(key), other.models.get(key))
                if model is not None
            )
        if own & pointed_at:
            return True
    return False


def find(plan, migration, state, steps, backwards, compute):
    """``(depends_on, variants)`` for one direction. ``state`` is the ancestors' state (not
    modified), ``steps`` the SQL computed from it, ``compute(state) -> steps`` computes it from
    another state."""
    key = (migration.app_label, migration.name)
    pool = plan.pool(key, backwards)
    if not pool or plan.cannot_matter(migration, pool):
        return [], []
    ancestors = plan.ancestors(key)
    everything = plan.state_of(ancestors | pool)
    if not may_differ(migration, state, everything):
        return [], []
    steps_everything = compute(everything)
    if steps_everything == steps:
        return [], []
    # A candidate is relevant when applying it (on top of its own ancestors) changes the SQL.
    cache = {}

    def steps_for(keys):
        keys = frozenset(keys)
        if keys not in cache:
            cache[keys] = compute(plan.state_of(keys))
        return cache[keys]

    relevant = []
    for candidate in sorted(pool, key=plan.order.__getitem__):
        without = ancestors | plan.ancestors(candidate)
        with_it = without | {candidate}
        if may_differ(migration, plan.state_of(without), plan.state_of(with_it)) and steps_for(
            with_it
        ) != steps_for(without):
            relevant.append(candidate)
    label = "%s.%s" % key
    direction = "backward" if backwards else "forward"
    if not relevant or len(relevant) > MAX_RELEVANT:
        raise VariantError(
            "%s: its %s SQL depends on which other migrations are applied (%s), and djinit cannot "
            "pin that down to at most %d of them; apply this project with `lockedmigrate --exec`"
            % (
                label,
                direction,
                "no single one changes it" if not relevant else "%d candidates" % len(relevant),
                MAX_RELEVANT,
            )
        )
    variants = []
    for size in range(1, len(relevant) + 1):
        for subset in itertools.combinations(relevant, size):
            chosen = set(subset)
            if any(plan.ancestors(k) & (set(relevant) - chosen) for k in chosen):
                continue  # not a set the database can have applied (history is consistent)
            variant_steps = steps_for(ancestors | plan.closure(chosen))
            if len(chosen) == len(relevant) and variant_steps != steps_everything:
                raise VariantError(
                    "%s: its %s SQL changes with a combination of applied migrations that djinit "
                    "cannot pin down; apply this project with `lockedmigrate --exec`" % (label, direction)
                )
            if variant_steps != steps:
                variants.append(
                    {
                        "direction": direction,
                        "applied": [list(k) for k in subset],
                        "steps": variant_steps,
                    }
                )
    return [list(k) for k in relevant], variants
