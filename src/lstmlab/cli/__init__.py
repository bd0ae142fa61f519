"""The ``lstmlab`` command: :mod:`.main` parses the subcommands (train, sample, eval, explore,
diagram, cells, bench, study, demo); :mod:`.demo` is ``lstmlab demo``, :mod:`.bench` is
``lstmlab bench``. The top of the import graph: it may import every other subpackage, and none
imports it."""

from lstmlab.cli.main import main

__all__ = ["main"]
