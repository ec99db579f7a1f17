"""``manage.py djinit_export DIR [--database ALIAS] [--pg-version N]``.

Writes the migration bundle that ``djinit lockedmigrate`` / ``checkmigrations`` /
``wait4db --migrated`` read. Needs no database connection (see ``djinit_django.export.offline``).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from djinit_django.export import bundle, offline


class Command(BaseCommand):
    help = "Export the migration bundle (SQL per migration, in migrate's order) for djinit."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("directory", help="Where to write manifest.json (created if missing).")
        parser.add_argument(
            "--database", default="default", help='Database alias to export for (default "default").'
        )
        parser.add_argument(
            "--pg-version",
            default=None,
            help="PostgreSQL server version to generate SQL for (e.g. 16). Default: the "
            "DJINIT_EXPORT_PG_VERSION setting, else %d (Django's minimum)." % offline.DEFAULT_PG_VERSION,
        )

    def run_from_argv(self, argv):
        bundle.fixed_hash_seed()  # from the command line: same set order on every export
        super().run_from_argv(argv)

    def handle(self, *args, **options):
        run(options["directory"], options["database"], options["pg_version"], self.stdout, options["verbosity"])


def run(directory, alias, pg_version, stdout, verbosity=1):
    from django.db import connections

    try:
        offline.require_psycopg()
    except ImportError as e:
        raise CommandError(str(e))
    if alias not in connections.settings:
        raise CommandError("unknown database alias %r" % alias)
    raw = pg_version or getattr(settings, "DJINIT_EXPORT_PG_VERSION", None) or offline.DEFAULT_PG_VERSION
    try:
        version = offline.parse_pg_version(raw)
    except ValueError as e:
        raise CommandError(str(e))
    try:
        manifest = bundle.export(directory, alias, version)
    except (offline.NeedsDatabase, bundle.walk.ExportError, bundle.variants.VariantError, ValueError) as e:
        raise CommandError(str(e))
    migrations = manifest["migrations"]
    python = [
        "%s.%s" % (m["app"], m["name"])
        for m in migrations
        if any("python" in s and not s.get("guard") for s in m["forward"])
    ]
    if verbosity >= 1:
        stdout.write(
            "Exported %d migrations (%d non-atomic, %d irreversible) and %d post_migrate rows to %s"
            % (
                len(migrations),
                sum(not m["atomic"] for m in migrations),
                sum(m["backward"] is None for m in migrations),
                len(manifest["post_migrate"]["rows"]),
                directory,
            )
        )
        if python:
            stdout.write(
                "Needs Python (djinit hands these to Django: `djinit lockedmigrate --python \"python manage.py\"`): "
                + ", ".join(python)
            )
        for name in manifest["post_migrate"]["not_exported"]:
            stdout.write(
                "post_migrate receiver not exported (lockedmigrate lists it after applying; run it "
                "with Django, e.g. `djinit lockedmigrate --exec -- python manage.py migrate`): %s" % name
            )
