"""`python -m pipeline.cli`: the data-side `gnm` commands without the model's (no torch import)."""

from pipeline.cli.app import main

main()
