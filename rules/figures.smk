# Figures 1-20, one rule each (figure_fig01 ... figure_fig20), drawn from the
# summary table, and the same figures for the pairs the paper does not show
# (figure_fig01_other ...). The registry (afterkernel.figures) holds each
# figure's file stem, study, report category and caption; importing it
# imports neither matplotlib nor pandas.

import os

from afterkernel.figures import FIGURES, OTHER_PAIRS, drawn_figures, report_labels, report_section


def get_figure_outputs():
    """PNG and SVG of every figure the config's studies draw: the paper's
    figures where a study has the paper's pairs, the other-pairs figures
    where it has others."""
    return [path for spec in drawn_figures(config["studies"]) for path in ak_plan.figure_files(spec.stem, AK_RESULTS)]


for _fig in [*FIGURES.values(), *OTHER_PAIRS.values()]:
    _png, _svg = ak_plan.figure_files(_fig.stem, AK_RESULTS)
    _caption = ak_plan.figure_caption_file(_fig.stem, AK_RESULTS)

    rule:
        name:
            _fig.rule
        input:
            summary=ak_plan.table_file("summary.csv", AK_RESULTS),
        output:
            # the caption (with the panel index) is written with the figure, from
            # the registry; absolute, because Snakemake joins a relative caption
            # path to rules/
            png=report(
                _png,
                caption=os.path.abspath(_caption),
                category=report_section(_fig.category, REPORT_SECTIONS),
                labels=report_labels(_fig),
            ),
            svg=_svg,
            caption=_caption,
        log:
            ak_plan.log_file("figures", _fig.stem, AK_LOGS),
        localrule: True
        conda:
            "../envs/afterkernel.yaml"
        params:
            fig=_fig.fig,
            # words the note on learning-rate runs that missed the loss target
            training={k: config["training"][k] for k in ("loss_target", "max_epochs")},
            code=code_hash("figure"),
        script:
            "../scripts/figure.py"
