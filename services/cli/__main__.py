"""`python -m services.cli`: the `cim` command."""

from services.cli import main

main()
