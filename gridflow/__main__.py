"""`python -m gridflow` runs the CLI."""

from gridflow.cli import main

main()
