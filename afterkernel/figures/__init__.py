"""Figures 1-16 of the paper and 17-20 beyond it, drawn from the summary table.

- :mod:`~afterkernel.figures.registry`: what each figure is (:data:`FIGURES`),
  the specs of its panels and curves, the labels. Cheap to import: this
  package imports only the registry, so the workflow can read it at every
  parse.
- :mod:`~afterkernel.figures.captions`: each figure's report caption.
- :mod:`~afterkernel.figures.panels`: what each figure draws.
- :mod:`~afterkernel.figures.points`: a curve's points from the summary.
- :mod:`~afterkernel.figures.draw`: matplotlib drawing and the figure job
  (:func:`~afterkernel.figures.draw.draw_figure`); import it to draw.
"""

from afterkernel.figures.registry import FIGURES, Curve, FigureSpec, Panel, index_markdown

__all__ = ["FIGURES", "Curve", "FigureSpec", "Panel", "index_markdown"]
