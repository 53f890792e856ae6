"""``python -m vpnsentry`` runs the CLI."""

from vpnsentry.cli import main

main()
