"""Writing a migration bundle.

A bundle is a directory with one file, ``manifest.json`` (UTF-8, keys sorted):

.. code-block:: text

    {
      "format": "djinit-migrations", "version": 2,
      "django": "5.2.19", "database": "default", "pg_version": 140000,
      "recorder": {"table": "django_migrations", "sql": "CREATE TABLE ..."},
      "migrations": [            # in the order `migrate` applies them (`showmigrations --plan`)
        {"app": "auth", "name": "0001_initial",
         "atomic": true, "initial": true,
         "dependencies": [["contenttypes", "0001_initial"]],   # parents in the graph
         "operations": ["Create model Permission", ...],        # descriptions, for --plan
         "replaces": [],          # squashed migrations: the migrations they replace
         "soft_applied": {"tables": [...], "columns": [[table, column]]} | null,  # --fake-initial
         "forward": [step, ...],  # sqlmigrate's SQL (from the ancestors' state), see walk.py
         "backward": [step, ...] | null,   # sqlmigrate --backwards; null: irreversible
         "depends_on": {"forward": [[app, name], ...], "backward": [...]},  # see variants.py
         "variants": [{"direction": "forward" | "backward", "applied": [[app, name], ...],
                       "steps": [step, ...] | null}, ...],
         "checksum": "sha256:<hex>"},   # of the entry without "checksum", canonical JSON
        ...],
      "post_migrate": {"receivers": [...], "rows": [...], "not_exported": [...]},  # post_migrate.py
      "checksum": "sha256:<hex>"   # of the whole manifest without this key, canonical JSON
    }

A step is ``{"sql": [...]}``, ``{"noop": ...}`` or ``{"python": ...}``: a migration whose chosen
steps hold an unguarded ``python`` step needs Django for that direction, every other migration
is applied as SQL. Version 2 (djinit 0.2) added ``depends_on``/``variants``, catalog lookups as
``DO`` blocks and the ``site`` post_migrate row; readers of version 2 also read version 1.

Canonical JSON = ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8. The same project exported for the same ``--pg-version`` gives the same bytes:
clock defaults are ``now()`` (see ``defaults``), and the command line entry points run Python with
``PYTHONHASHSEED=0`` (``fixed_hash_seed``), because Django iterates sets of strings while writing
SQL (two ``unique_together``/``index_together`` entries come out in hash order).
"""

import hashlib
import json
import os
import sys
import tempfile

import django
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from . import offline, post_migrate, variants, walk

FORMAT = "djinit-migrations"
VERSION = 2


def fixed_hash_seed():
    """Re-execute this command line with ``PYTHONHASHSEED=0`` unless it already has it.

    Django writes some statements in the iteration order of sets of strings, which depends on
    Python's per-process hash seed: without this, two exports of the same project could list
    the same statements in a different order. Only for command-line entry points (``manage.py
    djinit_export``, ``python -m djinit_django``); the process is replaced."""
    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    env = dict(os.environ, PYTHONHASHSEED="0")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(obj):
    return "sha256:" + hashlib.sha256(canonical(obj)).hexdigest()


def plan(loader):
    """``migrate``'s plan for a fresh database, which is the order ``showmigrations --plan``
    prints: forwards plans of the leaf nodes, first occurrence wins."""
    graph = loader.graph
    seen, out = set(), []
    for target in graph.leaf_nodes():
        for key in graph.forwards_plan(target):
            if key not in seen:
                seen.add(key)
                out.append(graph.nodes[key])
    return out


def _entry(connection, loader, plan_, migration):
    """One migration's manifest entry (without its checksum)."""
    key = (migration.app_label, migration.name)
    # sqlmigrate's state: the migration's ancestors, in their forwards plan order.
    ancestors_state = loader.project_state(key, at_end=False)
    backward = walk.backwards(connection, migration, ancestors_state)
    forward, after = walk.forwards(connection, migration, ancestors_state.clone())
    forward_depends, forward_variants = variants.find(
        plan_,
        migration,
        ancestors_state,
        forward,
        False,
        lambda state: walk.forwards(connection, migration, state)[0],
    )
    backward_depends, backward_variants = variants.find(
        plan_,
        migration,
        ancestors_state,
        backward,
        True,
        lambda state: walk.backwards(connection, migration, state),
    )
    return {
        "app": migration.app_label,
        "name": migration.name,
        "atomic": bool(migration.atomic),
        # As detect_soft_applied sees it: initial=True, or unset and first in its app.
        "initial": migration.initial is True
        or (
            migration.initial is None
            and not any(app == migration.app_label for app, _ in migration.dependencies)
        ),
        # The graph's edges (swappable, __first__/__latest__ and run_before resolved).
        "dependencies": sorted(list(p.key) for p in loader.graph.node_map[key].parents),
        "operations": [op.describe() for op in migration.operations],
        "replaces": [list(r) for r in migration.replaces],
        "soft_applied": walk.soft_applied_check(migration, after),
        "forward": forward,
        "backward": backward,
        "depends_on": {"forward": forward_depends, "backward": backward_depends},
        "variants": forward_variants + backward_variants,
    }


def build(alias="default", pg_version=None):
    """The manifest as a dict (nothing written)."""
    offline.require_psycopg()
    connection = connections[alias]
    with offline.offline(connection, pg_version):
        # connection=None: no applied migrations are read, squashed migrations replace theirs.
        loader = MigrationLoader(None, ignore_no_migrations=True)
        loader.check_consistent_history = None
        migrations = plan(loader)
        plan_ = variants.Plan(loader, migrations)
        entries = []
        for migration in migrations:
            entry = _entry(connection, loader, plan_, migration)
            entry["checksum"] = checksum(entry)
            entries.append(entry)
        editor = walk._editor(connection, True)
        editor.create_model(MigrationRecorder.Migration)
        recorder_sql = "\n".join(walk._finish(editor))
        # A freshly rendered final state (model order = ProjectState.models order), which is
        # the order manage.py migrate's post_migrate handlers see.
        final = loader.project_state()
        post = post_migrate.export(final.apps, alias)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "django": django.get_version(),
        "database": alias,
        "pg_version": pg_version,
        "recorder": {"table": MigrationRecorder.Migration._meta.db_table, "sql": recorder_sql},
        "migrations": entries,
        "post_migrate": post,
    }
    manifest["checksum"] = checksum(manifest)
    return manifest


def export(directory, alias="default", pg_version=None):
    """Write ``directory/manifest.json`` atomically; returns the manifest."""
    manifest = build(alias, pg_version)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False).encode())
            f.write(b"\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, "manifest.json"))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return manifest
