"""The ``reports`` package's plug-in to ``mdm-theory``: the ``report`` subcommand.

Registered through the entry point ``mdm_theory.commands: report`` in ``pyproject.toml``
(see :mod:`mdm_exact.runtime.plugins`). The options are defined here, once; the work is done
by :mod:`reports.build`, imported when the command runs (so ``mdm-theory --help`` needs no
matplotlib).
"""

from __future__ import annotations


def register_command(subparsers) -> None:
    """Add ``mdm-theory report``."""
    p = subparsers.add_parser(
        "report",
        help="regenerate the report (figures, data, REPORT.md) into ./reports/ or --out",
        description="Regenerate the theorem-versus-empirics figures, the JSON data behind them and "
        "REPORT.md. Finished cells are stored at once, so an interrupted run resumes; --force recomputes.",
    )
    add_arguments(p)
    p.set_defaults(func=_run)


def add_arguments(p) -> None:
    """The report's options."""
    p.add_argument("--quick", action="store_true", help="reduced grid (under 2 minutes on 2 cores)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output directory (default: reports/ under the current directory; from a source "
                   "checkout's root that is the committed report and its cell store)")
    p.add_argument("--config", metavar="TOML", default=None,
                   help="config file (default: the package's configs/full.toml, or quick.toml with --quick)")
    p.add_argument("--force", action="store_true", help="recompute cells that are already in the store")
    p.add_argument("--only", nargs="+", metavar="FIG", default=None, help="build only these figures (e.g. fig3 fig4)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _run(args) -> int:
    from reports.build import run_from_args

    return run_from_args(args)
