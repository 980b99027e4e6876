"""The ``fairslot`` command line: one module per command group."""
