"""The rows ``manage.py migrate``'s ``post_migrate`` handlers create, as data.

Django's ``create_contenttypes`` and ``create_permissions`` run for every installed app (in
``INSTALLED_APPS`` order) with the migrated project state's models. This module walks the same
apps and models in the same order and records what they would insert on an empty database:

- ``{"content_type": [app_label, model]}``
- ``{"permission": [app_label, model, codename, name]}``

``lockedmigrate`` inserts each row only when it is missing (so on an existing database only the
new ones are added, as Django does), in this order, so ids match a ``manage.py migrate`` run.
Other ``post_migrate`` receivers (e.g. ``django.contrib.sites``' default site) are not exported;
their names are listed in the manifest under ``post_migrate.not_exported``.
"""

from django.apps import apps as global_apps
from django.db import router
from django.db.models.signals import post_migrate

KNOWN_RECEIVERS = {
    "django.contrib.contenttypes.management.create_contenttypes",
    "django.contrib.auth.management.create_permissions",
}


def _name(func):
    return "%s.%s" % (getattr(func, "__module__", "?"), getattr(func, "__qualname__", repr(func)))


def _receivers(app_config):
    live = post_migrate._live_receivers(app_config)
    if isinstance(live, tuple):  # Django >= 5.0: (sync, async)
        live = [*live[0], *live[1]]
    return [_name(r) for r in live]


def rows(state_apps, using):
    """Returns (rows, not_exported receiver names)."""
    out = []
    created_ct = set()
    not_exported = []
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            continue
        names = _receivers(app_config)
        for name in names:
            if name not in KNOWN_RECEIVERS and name not in not_exported:
                not_exported.append(name)
        wants_ct = "django.contrib.contenttypes.management.create_contenttypes" in names
        wants_perm = "django.contrib.auth.management.create_permissions" in names
        # Receivers run in connection order; create_permissions first creates content types.
        for name in names:
            if name.endswith("create_contenttypes") and wants_ct:
                _content_types(state_apps, app_config.label, using, created_ct, out)
            elif name.endswith("create_permissions") and wants_perm:
                _content_types(state_apps, app_config.label, using, created_ct, out)
                _permissions(state_apps, app_config.label, using, out)
    return out, not_exported


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
