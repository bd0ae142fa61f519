"""Which LSTM variant should I use? Every cell on one task, one budget, several seeds: one table.

    lstmlab study --cells lstm,peephole,coupled,gru,rnn --task recall --gap 30 --seeds 5 \\
        --steps 3000 --budget 30m --lr-search 4 --workers 2 --out studies/recall

In the spirit of Greff et al. 2015 ("LSTM: A Search Space Odyssey"), every cell is trained by
:func:`lstmlab.train.train` -- an ordinary run, in ``OUT/runs/<cell>-s<seed>[-lr<lr>]/`` -- with
everything else held equal:

- **Task and data**: the same :class:`~lstmlab.train.TrainConfig` settings (any task the trainer
  offers); a seed gives every cell the same training batches, and the validation data is shared.
- **Parameters**: each cell's hidden size is solved (bisection on the real model's
  ``sum(p.numel())``, built on the meta device) so that the whole model comes closest to the
  target: ``--params``, or by default the ``lstm`` model at ``--hidden-size``. The table states
  every count.
- **Steps and time**: ``--steps`` for every run; ``--budget`` is the study's wall time, split
  evenly: each run gets ``minutes = budget * workers / runs`` and stops at whichever limit comes
  first (the table's ``steps`` column shows which did). Model building, evaluation and kernel
  compilation are not counted, so the study overruns the budget a little.
- **Learning rate**: ``--lr``, or with ``--lr-search K`` Greff et al.'s random search: K rates
  drawn log-uniformly from ``[--lr-min, --lr-max]`` (the same K for every cell), each tried on
  seed 0; the one with the lowest final validation loss then trains the other seeds.

Runs: cells x seeds, or with a search cells x (K + seeds - 1). Results: ``results.csv`` and
``results.md`` (mean ± std over seeds of every final validation metric, hidden size, parameter
count, and Welch's t-test of the headline metric -- ``--metric``, by default ``accuracy`` where
the task reports one, else ``loss`` -- against the vanilla ``lstm``), and ``boxplot.png``.

A run is finished once its ``result.json`` exists; a study started again with the same command
skips finished runs and resumes unfinished ones from their last checkpoint
(``train(..., resume=True)``; a resumed run's time limit starts afresh), so a killed study loses
at most the steps since a checkpoint. ``OUT/study.json`` holds the plan; a different study in
the same folder is refused.

The command line (``lstmlab study``) is :mod:`lstmlab.study.cli`; the pieces: :mod:`.settings`
(:class:`Study`), :mod:`.params` (matched sizes), :mod:`.runs` (training, in worker processes),
:mod:`.table` and :mod:`.stats` (results and Welch's t-test), :mod:`.runner` (the whole study).
Built on :mod:`lstmlab.train` and :mod:`lstmlab.viz`.
"""

from lstmlab.study.params import match_hidden_size, parameter_count
from lstmlab.study.runner import run_study
from lstmlab.study.runs import Run, train_run
from lstmlab.study.settings import GREFF_CELLS, Study, learning_rates
from lstmlab.study.table import write_results

__all__ = [
    "GREFF_CELLS",
    "Study",
    "Run",
    "parameter_count",
    "match_hidden_size",
    "learning_rates",
    "run_study",
    "train_run",
    "write_results",
]
