from django.apps import AppConfig


class DjinitDjangoConfig(AppConfig):
    """``djinit_django`` in ``INSTALLED_APPS`` (for ``manage.py djinit_export``)."""

    name = "djinit_django"
    verbose_name = "djinit"

    def __init__(self, app_name, app_module):
        # Django loads the PostgreSQL backend while it imports the models (the step after this
        # one) and then fails with "Error loading psycopg2 or psycopg module". Say what to
        # install instead, before that; only where that failure would happen anyway.
        from django.conf import settings

        from djinit_django.export.offline import require_psycopg

        if any("postgresql" in db.get("ENGINE", "") for db in settings.DATABASES.values()):
            from django.core.exceptions import ImproperlyConfigured

            try:
                require_psycopg()
            except ImportError as e:
                raise ImproperlyConfigured(str(e)) from None
        super().__init__(app_name, app_module)
