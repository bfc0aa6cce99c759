"""The ``mdm-theory`` command line.

Built-in subcommands live in :mod:`mdm_exact.runtime.commands` (one module each). Installed
packages add theirs through the entry-point group ``mdm_theory.commands``
(:mod:`mdm_exact.runtime.plugins`): this project's ``neural`` and ``report`` come from
``neural/plugin.py`` and ``reports/plugin.py``, so that ``mdm_exact`` never imports the
layers above it. Either way a command is a ``register(subparsers)`` function that adds its
parser and sets ``func`` to a callable ``func(args) -> int``.

Start-up stays fast: only the module of the command being run is imported (entry points are
looked up only for a command that is not built in, and for ``--help``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: (module, help) of every built-in subcommand; a module is imported only when needed.
COMMANDS = {
    "language": ("mdm_exact.runtime.commands.language", "make and inspect languages (presets, files)"),
    "exact": ("mdm_exact.runtime.commands.exact", "exact output law of the idealised sampler and its metrics (small L)"),
    "sample": ("mdm_exact.runtime.commands.sample", "Monte Carlo of the idealised sampler at paper scale"),
    "check": ("mdm_exact.runtime.commands.check", "check the paper's bounds on a grid of instances"),
    "bench": ("mdm_exact.runtime.commands.bench", "benchmarks (ratios against plain reference implementations)"),
    "sweep": ("mdm_exact.runtime.commands.sweep", "run a grid of cells from a TOML config into a durable store"),
}


def plugin_commands() -> dict:
    """``{name: EntryPoint}`` of the subcommands that installed packages register.

    Raises
    ------
    PluginError
        If a package registers the name of a built-in command (or two packages one name).
    """
    from mdm_exact.runtime.plugins import COMMANDS_GROUP, PluginError, entry_points

    eps = entry_points(COMMANDS_GROUP)
    clash = sorted(set(eps) & set(COMMANDS))
    if clash:
        raise PluginError(
            f"installed package(s) register the built-in command(s) {', '.join(clash)} "
            f"({', '.join(eps[c].value for c in clash)}); uninstall them"
        )
    return eps


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2.

    argparse prints the whole usage block before the error; a script (or a person) reading the
    last line only needs what was wrong, and ``--help`` still prints the usage. Subparsers made
    with ``add_subparsers`` inherit this class.
    """

    def error(self, message):  # noqa: D401 - argparse's hook
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, only that command's module is imported (the others get stubs)."""
    from mdm_exact import __version__

    parser = OneLineParser(
        prog="mdm-theory",
        description="Exact and Monte Carlo checks of masked diffusion language models "
        "(Feng et al. 2025, arXiv:2502.09622).",
    )
    parser.add_argument("--version", action="version", version=f"mdm-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_, add_help=False)
        else:
            importlib.import_module(module).register(sub)
    if only is None or only not in COMMANDS:
        for name, ep in plugin_commands().items():
            if only is not None and name != only:
                sub.add_parser(name, add_help=False)
            else:
                ep.load()(sub)
    return parser


def _innermost_parser(parser: argparse.ArgumentParser, argv) -> argparse.ArgumentParser:
    """The parser of the deepest subcommand that ``argv`` names (``neural sample`` -> its parser)."""
    words = iter(a for a in argv if not a.startswith("-"))
    while True:
        choices = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        word = next(words, None)
        if not choices or word not in choices[0]:
            return parser
        parser = choices[0][word]


def main(argv=None) -> int:
    from mdm_exact.runtime.plugins import PluginError

    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the module of the command being run (fast start-up, no torch for `exact`).
    only = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        if only is not None and only not in COMMANDS and only not in plugin_commands():
            only = None  # unknown command: the full parser says which ones exist
        parser = build_parser(only)
    except PluginError as exc:
        print(f"mdm-theory: error: {exc}", file=sys.stderr)
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the (sub)command they were given to, so its --help is the one to read
        _innermost_parser(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if not argv else 2
    where = _innermost_parser(parser, argv).prog  # "mdm-theory sample", "mdm-theory neural train"
    try:
        from mdm_exact._validate import check_seed_options

        check_seed_options(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `mdm-theory ... --json | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, NotImplementedError) as exc:  # bad input, missing / unwritable files
        print(f"{where}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # a size the up-front estimates let through: still one line
        print(f"{where}: error: out of memory ({' '.join(str(exc).split()) or 'MemoryError'}); "
              f"use a smaller size", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a command may say what it kept (e.g. where a training state was saved)
        detail = " ".join(str(exc).split())
        print(f"{where}: interrupted; " + (detail if detail else "finished results are kept"), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
