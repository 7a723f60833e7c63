"""The `footnote` command line: one thin module per command over the services."""
