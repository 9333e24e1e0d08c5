"""`python -m bot.cli`: the same as the `coassess` command."""

from bot.cli import main

main()
