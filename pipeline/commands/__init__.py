"""Subcommands of the `pipeline` CLI, one module each (`configure(parser)`, `run(args)`)."""
