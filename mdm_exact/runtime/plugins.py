"""The plug-in registry: what installed packages add to ``mdm-theory``.

``mdm_exact`` is the bottom layer: it never imports ``neural`` or ``reports``. The packages
above it plug in through two entry-point groups, declared in their ``pyproject.toml``:

``mdm_theory.commands``
    ``name = "package.module:register"``: a subcommand ``mdm-theory <name>``. ``register``
    is called with the CLI's ``subparsers`` object, adds its parser and sets ``func`` (the
    same protocol as the built-in command modules of :mod:`mdm_exact.runtime.commands`).
``mdm_theory.sweep_kinds``
    ``name = "package.module:SPEC"``: a sweep cell kind; ``SPEC`` is a
    :class:`mdm_exact.runtime.kinds.KindSpec` whose ``name`` is the entry point's name
    (built with :func:`mdm_exact.runtime.kinds.make_kind`).

This project registers ``neural`` (command and kind, from ``neural/plugin.py``) and
``report`` (command, from ``reports/plugin.py``). An entry point's module is imported only
when its command runs, when its kind is used, or for ``mdm-theory --help``; it must import
nothing heavy at module level (``neural/plugin.py`` imports without torch).
"""

from __future__ import annotations

import functools

__all__ = ["COMMANDS_GROUP", "SWEEP_KINDS_GROUP", "PluginError", "entry_points", "load"]

COMMANDS_GROUP = "mdm_theory.commands"
SWEEP_KINDS_GROUP = "mdm_theory.sweep_kinds"


class PluginError(ValueError):
    """Two installed packages claim the same name, or a plug-in does not follow its protocol."""


@functools.lru_cache(maxsize=None)
def entry_points(group: str) -> dict:
    """``{name: EntryPoint}`` of ``group`` over the installed distributions.

    The same entry point seen twice (e.g. an editable and a regular install of one package)
    counts once.

    Raises
    ------
    PluginError
        If two entry points of ``group`` share a name but point at different objects.
    """
    from importlib.metadata import entry_points as _entry_points

    found = {}
    for ep in _entry_points(group=group):
        old = found.get(ep.name)
        if old is not None and old.value != ep.value:
            raise PluginError(
                f"two installed packages register {ep.name!r} in the entry-point group {group!r}: "
                f"{old.value} and {ep.value}; uninstall one of them"
            )
        found[ep.name] = ep
    return found


def load(group: str, name: str):
    """The object of entry point ``name`` in ``group`` (imports its module), or None."""
    ep = entry_points(group).get(name)
    return None if ep is None else ep.load()
