"""The `ragserve` command line: one thin module per command group."""
