"""``python -m fairslot.cli``: the same as the ``fairslot`` command."""

from fairslot.cli.main import run

run()
