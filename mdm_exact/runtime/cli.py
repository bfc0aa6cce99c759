"""The ``mdm-theory`` command line.

Each subcommand lives in its own module under ``mdm_exact/commands/`` (or, for ``report`` and
``neural``, is loaded lazily from the ``reports`` / ``neural`` packages, so that ``mdm_exact``
itself never imports matplotlib or torch). A command module exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: (module, help) for every subcommand; modules are imported only when needed.
COMMANDS = {
    "language": ("mdm_exact.runtime.commands.language", "make and inspect languages (presets, files)"),
    "exact": ("mdm_exact.runtime.commands.exact", "exact output law of the idealised sampler and its metrics (small L)"),
    "sample": ("mdm_exact.runtime.commands.sample", "Monte Carlo of the idealised sampler at paper scale"),
    "check": ("mdm_exact.runtime.commands.check", "check the paper's bounds on a grid of instances"),
    "bench": ("mdm_exact.runtime.commands.bench", "benchmarks (ratios against plain reference implementations)"),
    "sweep": ("mdm_exact.runtime.commands.sweep", "run a grid of cells from a TOML config into a durable store"),
    "report": ("mdm_exact.runtime.commands.report", "regenerate reports/ (figures, data, REPORT.md)"),
    "neural": ("mdm_exact.runtime.commands.neural", "train, sample and evaluate learned MDMs / AR baselines (needs torch)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from mdm_exact import __version__

    parser = argparse.ArgumentParser(
        prog="mdm-theory",
        description="Exact and Monte Carlo checks of masked diffusion language models "
        "(Feng et al. 2025, arXiv:2502.09622).",
    )
    parser.add_argument("--version", action="version", version=f"mdm-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_, add_help=False)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith(module):
                p = sub.add_parser(name, help=f"{help_} [not available yet]")
                p.set_defaults(func=_unavailable(name))
                continue
            raise
        mod.register(sub)
    return parser


def _unavailable(name):
    def func(args):
        print(f"mdm-theory {name}: this command is not available in this build", file=sys.stderr)
        return 2

    return func


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the module of the command being run (fast start-up, no torch for `exact`).
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotImplementedError) as exc:
        print(f"mdm-theory {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mdm-theory ... --json | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"mdm-theory {args.command}: interrupted; finished results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
