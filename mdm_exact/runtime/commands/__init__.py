"""One module per ``mdm-theory`` subcommand; each exposes ``register(subparsers)``."""
