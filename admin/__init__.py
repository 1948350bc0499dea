"""The admin commands `cli.py` runs: one module per command group, over the helpers in `common`."""
