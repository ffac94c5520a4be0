"""The `llm-shadow` command line: one module per group of subcommands."""
