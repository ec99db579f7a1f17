"""``python -m djinit_django DIR [--database ALIAS] [--pg-version N]`` with
``DJANGO_SETTINGS_MODULE`` set: the exporter without adding djinit_django to INSTALLED_APPS."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m djinit_django", description="Export a djinit migration bundle.")
    parser.add_argument("directory")
    parser.add_argument("--database", default="default")
    parser.add_argument("--pg-version", default=None)
    args = parser.parse_args(argv)
    if argv is None:
        from djinit_django.export.bundle import fixed_hash_seed

        fixed_hash_seed()  # the same set order on every export (see bundle.py)
    from djinit_django.export.offline import require_psycopg

    try:
        require_psycopg()  # before django.setup(), which would fail on it with less to go on
    except ImportError as e:
        print("djinit_export: error: %s" % e, file=sys.stderr)
        return 1
    import django
    from django.core.management.base import CommandError, OutputWrapper

    django.setup()
    from djinit_django.management.commands.djinit_export import run

    try:
        run(args.directory, args.database, args.pg_version, OutputWrapper(sys.stdout))
    except CommandError as e:
        print("djinit_export: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
