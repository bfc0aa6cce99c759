"""``mdm-theory report``: regenerate ``reports/`` (figures, their JSON data, REPORT.md).

The work is done by the ``reports`` package, imported lazily inside the handler, so that
``mdm_exact`` itself never imports matplotlib.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="regenerate reports/ (figures, data, REPORT.md)",
        description="Regenerate the theorem-versus-empirics figures, the JSON data behind them and "
        "REPORT.md. Finished cells are stored at once, so an interrupted run resumes; --force recomputes.",
    )
    add_arguments(p)
    p.set_defaults(func=_run)


def add_arguments(p) -> None:
    """The report's options; ``python -m reports.build`` takes the same ones."""
    p.add_argument("--quick", action="store_true", help="reduced grid (under 2 minutes on 2 cores)")
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default: the reports/ package directory)")
    p.add_argument("--config", metavar="TOML", default=None, help="config file (default reports/configs/full.toml or quick.toml)")
    p.add_argument("--force", action="store_true", help="recompute cells that are already in the store")
    p.add_argument("--only", nargs="+", metavar="FIG", default=None, help="build only these figures (e.g. fig3 fig4)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _run(args) -> int:
    try:
        from reports.build import run_from_args
    except ModuleNotFoundError as exc:  # e.g. an installation without the reports package or matplotlib
        raise ValueError(f"the report needs the 'reports' package and matplotlib ({exc})") from exc
    return run_from_args(args)
