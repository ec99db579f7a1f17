"""Guards: SQL predicates proving that a known Python-only operation is a no-op.

Django's contrib apps contain two ``RunPython`` operations that ``sqlmigrate`` cannot write as
SQL. On a database without content types / permissions (a fresh database, where they are applied
together with the initial migrations) both provably do nothing:

- ``contenttypes.0002_remove_content_type_name``, ``RunPython(add_legacy_name, noop)``:
  loops over existing ``ContentType`` rows. No-op when ``django_content_type`` is empty.
- ``auth.0011_update_proxy_permissions``,
  ``RunPython(update_proxy_model_permissions, revert_proxy_model_permissions)``: moves existing
  permissions of proxy models between content types. No-op (both directions) when
  ``auth_permission`` is empty.

The bundle carries the guard with the operation; ``lockedmigrate`` evaluates it inside the
migration's transaction (after the lock is held, so nothing can add rows in between) and refuses
with a clear message when it does not hold (then use ``lockedmigrate --exec``). Any other
Python operation is exported as ``python`` without a guard and never applied without Python.
"""

# (module, function qualname) -> guard, for each direction.
_EMPTY_CT = {
    "id": "django_content_type-empty",
    "sql": "SELECT NOT EXISTS (SELECT 1 FROM django_content_type)",
    "reason": "add_legacy_name only rewrites existing content types; there are none",
}
_EMPTY_PERM = {
    "id": "auth_permission-empty",
    "sql": "SELECT NOT EXISTS (SELECT 1 FROM auth_permission)",
    "reason": "proxy permissions are only moved when permissions exist; there are none",
}

KNOWN = {
    ("django.contrib.contenttypes.migrations.0002_remove_content_type_name", "add_legacy_name"): _EMPTY_CT,
    ("django.contrib.auth.migrations.0011_update_proxy_permissions", "update_proxy_model_permissions"): _EMPTY_PERM,
    ("django.contrib.auth.migrations.0011_update_proxy_permissions", "revert_proxy_model_permissions"): _EMPTY_PERM,
}


def _describe_callable(func):
    return getattr(func, "__module__", None), getattr(func, "__qualname__", repr(func))


def python_step(operation, backwards):
    """The bundle step for an operation that cannot be written as SQL."""
    from django.db.migrations.operations.special import RunPython

    step = {"python": operation.describe(), "guard": None}
    if isinstance(operation, RunPython):
        func = operation.reverse_code if backwards else operation.code
        if func is RunPython.noop or (
            getattr(func, "__qualname__", "") == "RunPython.noop"
        ):
            return {"noop": operation.describe()}
        module, name = _describe_callable(func)
        step["callable"] = "%s.%s" % (module, name)
        step["guard"] = KNOWN.get((module, name))
    else:
        step["callable"] = "%s.%s" % (type(operation).__module__, type(operation).__qualname__)
    return step
