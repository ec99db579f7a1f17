"""Django side of djinit.

- ``djinit_django`` in ``INSTALLED_APPS`` adds ``manage.py djinit_export DIR`` (migration bundle exporter).
- ``djinit_django.cache.DiscoveredMemcache`` is a cache backend whose server list is the file that
  ``djinit dns-discover --watch`` maintains.
"""
