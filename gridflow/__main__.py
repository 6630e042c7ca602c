"""`python -m gridflow` runs the CLI, as the console script does."""

from gridflow.entry import main

main()
