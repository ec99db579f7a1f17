"""What ``manage.py migrate``'s ``post_migrate`` receivers do, as data.

``migrate`` first imports every installed app's ``management`` module (receivers such as
django-guardian's ``create_anonymous_user`` are connected there), then sends ``post_migrate`` for
each app with models, in ``INSTALLED_APPS`` order, with the migrated project state's models. This
module does the same imports and walks the same receivers in the same order. Each receiver is
either exported or listed as not exported, never skipped silently:

- ``create_contenttypes`` / ``create_permissions`` (contenttypes, auth): rows
  ``{"content_type": [app_label, model]}`` and
  ``{"permission": [app_label, model, codename, name]}``, inserted by ``lockedmigrate`` only when
  missing, in this order, so ids match a ``manage.py migrate`` run;
- ``create_default_site`` (sites): ``{"site": {"id", "domain", "name", "sequence_reset"}}``,
  inserted only when ``django_site`` is empty, followed by Django's sequence reset;
- receivers known to touch no database (``NO_DATABASE_EFFECT``, e.g. cache clearing);
- anything else: its dotted name in ``not_exported``; ``lockedmigrate`` prints it after applying
  (run it with Django: ``lockedmigrate --exec`` or a Job).

``receivers`` lists every receiver once, in the order it first runs, with how it is handled
(``content_types``, ``permissions``, ``default_site``, ``no_database_effect`` or null).
"""

from importlib import import_module

from django.apps import apps as global_apps
from django.conf import settings
from django.db import connections, router
from django.db.models.signals import post_migrate
from django.utils.module_loading import module_has_submodule

CONTENT_TYPES = "django.contrib.contenttypes.management.create_contenttypes"
PERMISSIONS = "django.contrib.auth.management.create_permissions"
DEFAULT_SITE = "django.contrib.sites.management.create_default_site"

# Receivers that only reset in-process state; running them is not needed after a migration
# applied by another process.
NO_DATABASE_EFFECT = {
    "guardian.shortcuts.clear_ct_cache": "clears django-guardian's in-process ContentType cache",
}


def _name(func):
    return "%s.%s" % (getattr(func, "__module__", "?"), getattr(func, "__qualname__", repr(func)))


def _receivers(app_config):
    live = post_migrate._live_receivers(app_config)
    if isinstance(live, tuple):  # Django >= 5.0: (sync, async)
        live = [*live[0], *live[1]]
    return [_name(r) for r in live]


def import_management_modules():
    """What ``migrate`` does before it sends the signal: connects receivers defined there."""
    for app_config in global_apps.get_app_configs():
        if module_has_submodule(app_config.module, "management"):
            import_module(".management", app_config.name)


def export(state_apps, using):
    """``{"receivers": [...], "rows": [...], "not_exported": [...]}``."""
    import_management_modules()
    rows = []
    created_ct = set()
    receivers = {}
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            continue
        for name in _receivers(app_config):
            if name == CONTENT_TYPES:
                handled = "content_types"
                _content_types(state_apps, app_config.label, using, created_ct, rows)
            elif name == PERMISSIONS:
                # create_permissions first creates the app's content types.
                handled = "permissions"
                _content_types(state_apps, app_config.label, using, created_ct, rows)
                _permissions(state_apps, app_config.label, using, rows)
            elif name == DEFAULT_SITE:
                handled = "default_site"
                _site(state_apps, using, rows)
            elif name in NO_DATABASE_EFFECT:
                handled = "no_database_effect"
            else:
                handled = None
            receivers.setdefault(name, handled)
    return {
        "receivers": [{"receiver": n, "handled": h} for n, h in receivers.items()],
        "rows": rows,
        "not_exported": [n for n, h in receivers.items() if h is None],
    }


def _models(state_apps, label):
    try:
        return list(state_apps.get_app_config(label).get_models())
    except LookupError:
        return None


def _content_types(state_apps, label, using, created, out):
    try:
        ContentType = state_apps.get_model("contenttypes", "ContentType")
    except LookupError:
        return
    if not router.allow_migrate_model(using, ContentType):
        return
    models = _models(state_apps, label)
    if not models:
        return
    for model in models:
        key = (label, model._meta.model_name)
        if key not in created:
            created.add(key)
            out.append({"content_type": [label, model._meta.model_name]})


def _permissions(state_apps, label, using, out):
    from django.contrib.auth.management import _get_all_permissions

    try:
        Permission = state_apps.get_model("auth", "Permission")
        state_apps.get_model("contenttypes", "ContentType")
    except LookupError:
        return
    if not router.allow_migrate_model(using, Permission):
        return
    models = _models(state_apps, label)
    if not models:
        return
    name_max = Permission._meta.get_field("name").max_length
    for model in models:
        opts = model._meta  # for_concrete_models=False: proxies get their own content type
        for codename, name in _get_all_permissions(opts):
            if len(name) > name_max:
                raise ValueError(
                    "permission name %r of %s.%s is longer than %d characters"
                    % (name, opts.app_label, opts.model_name, name_max)
                )
            out.append({"permission": [opts.app_label, opts.model_name, codename, str(name)]})


def _site(state_apps, using, out):
    """``create_default_site``: the example.com site when the table is empty, then the
    sequence reset Django runs because the id was set explicitly."""
    from django.core.management.color import no_style

    try:
        Site = state_apps.get_model("sites", "Site")
    except LookupError:
        return
    if not router.allow_migrate_model(using, Site):
        return
    out.append(
        {
            "site": {
                "id": int(getattr(settings, "SITE_ID", 1)),
                "domain": "example.com",
                "name": "example.com",
                "sequence_reset": connections[using].ops.sequence_reset_sql(no_style(), [Site]),
            }
        }
    )
