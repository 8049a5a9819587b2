"""Figures 1-16 of the paper and 17-20 beyond it, drawn from the summary table,
for the paper's pairs and, figure by figure, for every other pair of a study.

- :mod:`~afterkernel.figures.registry`: what each figure is (:data:`FIGURES`,
  :data:`OTHER_PAIRS`), which a config draws (:func:`drawn_figures`), the
  specs of its panels and curves, the labels. Cheap to import: this
  package imports only the registry, so the workflow can read it at every
  parse.
- :mod:`~afterkernel.figures.captions`: each figure's report caption.
- :mod:`~afterkernel.figures.panels`: what each figure draws.
- :mod:`~afterkernel.figures.points`: a curve's points from the summary.
- :mod:`~afterkernel.figures.draw`: matplotlib drawing and the figure job
  (:func:`~afterkernel.figures.draw.draw_figure`); import it to draw.
"""

from afterkernel.figures.registry import (FIGURES, OTHER_PAIRS, Curve, FigureSpec, Panel, drawn_figures,
                                          index_markdown, paper_pair, report_labels, report_section,
                                          report_sections)

__all__ = ["FIGURES", "OTHER_PAIRS", "Curve", "FigureSpec", "Panel", "drawn_figures", "index_markdown",
           "paper_pair", "report_labels", "report_section", "report_sections"]
