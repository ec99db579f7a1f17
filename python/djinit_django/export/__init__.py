"""The migration bundle exporter. See ``bundle.export`` and the ``djinit_export`` command."""

from .bundle import FORMAT, VERSION, export  # noqa: F401
