"""A memcached cache backend whose server list is a file that ``dns-discover --watch`` maintains.

Django's ``PyMemcacheCache`` takes a fixed server list. In Kubernetes the memcached pods behind a
headless Service come and go; ``djinit dns-discover --watch -o FILE`` (a sidecar) keeps FILE
listing the ready pods, replacing it atomically. This backend reads FILE:

- at most once per ``check_interval`` seconds (default 1.0) it ``stat``s FILE (one syscall) and
  re-reads it only when its inode, size or modification time changed;
- after a connection error (refused, reset, timeout, closed) it re-checks FILE at once; if the
  list changed it rebuilds the client and runs the failed operation once more on the new list
  (``incr``/``decr`` only when the connection was refused, so an increment is never applied twice);
  if the list did not change, the error propagates as with ``PyMemcacheCache``.

Rebuilding replaces only the pymemcache ``HashClient``: key prefix, version, key function,
default timeout and OPTIONS stay as configured, and every Django cache method (keyword arguments
included) is the inherited one. Until FILE exists and lists servers, the cache misses every get and
drops every set (like ``DummyCache``) instead of raising, and logs one WARNING on the
``djinit_django.cache`` logger saying so (once per FILE and process: a missing sidecar or a wrong
LOCATION must not look like a cache that merely has no hits; one line, not one per request). When
servers appear later, one INFO line says how many. A FILE that becomes empty or disappears
keeps the last list (dns-discover never writes an empty list unless ``--min 0``).

FILE formats (all ``dns-discover --format`` outputs): ``lines`` (default), ``csv``, ``json``
(array of ``"ip:port"``) and ``env`` (``NAME=ip:port,...``); IPv6 as ``[addr]:port``.

Settings::

    CACHES = {
        "default": {
            "BACKEND": "djinit_django.cache.DiscoveredMemcache",
            "LOCATION": "/run/memcached/servers",   # the file dns-discover --watch writes
            "OPTIONS": {"check_interval": 1.0},      # plus any pymemcache HashClient option
        }
    }
"""

from __future__ import annotations

import json
import logging
import os
import time

from django.core.cache.backends.memcached import PyMemcacheCache

__all__ = ["DiscoveredMemcache", "parse_servers"]

logger = logging.getLogger(__name__)

# Server files already warned about in this process (one warning per file, not per request).
_warned: set[str] = set()

# Operations that must not run twice if the first attempt may have reached the server.
_NOT_IDEMPOTENT = frozenset({"incr", "decr"})


def _connection_errors():
    from pymemcache.exceptions import MemcacheUnexpectedCloseError

    return (OSError, MemcacheUnexpectedCloseError)


def parse_servers(text: str) -> list[tuple[str, int]]:
    """``ip:port`` entries of any dns-discover format, as sorted, unique ``(host, port)``."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except ValueError:
            entries = None
        if isinstance(entries, list):
            return _normalize(str(e) for e in entries)
    first = text.splitlines()[0]
    if "=" in first and not first.startswith("["):
        text = first.split("=", 1)[1]
    return _normalize(text.replace(",", " ").split())


def _normalize(entries) -> list[tuple[str, int]]:
    out = set()
    for e in entries:
        e = e.strip()
        if not e:
            continue
        if e.startswith("["):
            host, _, port = e[1:].partition("]:")
        else:
            host, _, port = e.rpartition(":")
        try:
            p = int(port)
        except ValueError:
            continue
        if host and 0 < p < 65536:
            out.add((host, p))
    return sorted(out)


class DiscoveredMemcache(PyMemcacheCache):
    """``PyMemcacheCache`` whose servers are read from the file named by LOCATION."""

    def __init__(self, server, params):
        params = dict(params)
        options = dict(params.get("OPTIONS") or {})
        self._check_interval = float(options.pop("check_interval", 1.0))
        params["OPTIONS"] = options
        path = server if isinstance(server, (str, os.PathLike)) else list(server)[0]
        self._path = os.fspath(path)
        super().__init__(self._path, params)
        self._servers: list[tuple[str, int]] = []
        self._client = None
        self._signature = None
        self._next_check = 0.0

    @property
    def client_servers(self):
        return list(self._servers)

    @property
    def _cache(self):
        self._refresh()
        return _Retrying(self)

    def _refresh(self, force: bool = False) -> bool:
        """Re-read the file if due (or ``force``); True when the client was rebuilt."""
        now = time.monotonic()
        if self._client is not None and not force and now < self._next_check:
            return False
        self._next_check = now + self._check_interval
        try:
            st = os.stat(self._path)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            signature = None
        if self._client is not None and signature == self._signature:
            return False
        self._signature = signature
        servers = []
        if signature is not None:
            try:
                with open(self._path, encoding="utf-8") as f:
                    servers = parse_servers(f.read())
            except (OSError, UnicodeDecodeError):
                servers = []
        if not servers and self._servers:
            servers = self._servers  # keep the last good list
        if self._client is not None and servers == self._servers:
            return False
        old, self._servers = self._client, servers
        if servers:
            if self._path in _warned:
                _warned.discard(self._path)
                logger.info("djinit cache: %s now lists %d server(s)", self._path, len(servers))
            self._client = self._class(servers, **self._options)
        else:
            if self._path not in _warned:
                _warned.add(self._path)
                why = "is missing" if signature is None else "lists no server"
                logger.warning(
                    "djinit cache: server file %s %s (is the dns-discover --watch sidecar running, "
                    "and LOCATION its -o FILE?); every get misses and every set is dropped until it "
                    "lists servers",
                    self._path,
                    why,
                )
            # No server yet: every get misses, every set is dropped, nothing raises.
            self._client = self._class([], **{**self._options, "ignore_exc": True})
        if old is not None:
            try:
                old.disconnect_all()
            except Exception:
                pass
        return True


class _Retrying:
    """The current client; an operation that fails on a connection error is run once more after
    re-reading the server file, if the list changed."""

    __slots__ = ("_backend",)

    def __init__(self, backend: DiscoveredMemcache):
        self._backend = backend

    def __getattr__(self, name):
        attr = getattr(self._backend._client, name)
        if not callable(attr):
            return attr
        backend = self._backend

        def call(*args, **kwargs):
            try:
                return getattr(backend._client, name)(*args, **kwargs)
            except _connection_errors() as e:
                if name in _NOT_IDEMPOTENT and not isinstance(e, ConnectionRefusedError):
                    raise
                if not backend._refresh(force=True):
                    raise
                return getattr(backend._client, name)(*args, **kwargs)

        return call
