"""Pictures, drawn from the code: cell diagrams in the post's style traced from a cell's
``step`` (:mod:`.trace`, :mod:`.layout`, :mod:`.render`, :mod:`.diagram`), the gate explorer page
(:mod:`.explore`, :mod:`.explore_page`), and plots of training curves, gates, gradients,
attention and studies (:mod:`.plots` and its neighbours). Built on :mod:`lstmlab.nn` and
:mod:`lstmlab.models`; matplotlib is imported only when a plot is drawn."""
