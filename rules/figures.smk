# Figures 1-16 of the paper, one rule each (figure_fig01 ... figure_fig16),
# drawn from the summary table. The registry (afterkernel.figures.FIGURES)
# holds each figure's file stem, study and report category; importing it does
# not import matplotlib.

from afterkernel.figures import FIGURES


def get_figure_outputs():
    """PNG and SVG of every figure whose study the config runs."""
    return [path for spec in FIGURES.values() if spec.study in config["studies"] for path in spec.files]


for _fig in FIGURES.values():

    rule:
        name:
            _fig.rule
        localrule: True
        input:
            summary="results/tables/summary.csv",
        output:
            png=report(
                _fig.files[0],
                caption=f"../report/{_fig.fig}.rst",
                category=_fig.category,
            ),
            svg=_fig.files[1],
        log:
            ak_plan.log_file("figures", _fig.stem),
        params:
            fig=_fig.fig,
            # words the note on learning-rate runs that missed the loss target
            training={k: config["training"][k] for k in ("loss_target", "max_epochs")},
            code=code_hash("figure"),
        conda:
            "../envs/afterkernel.yaml"
        script:
            "../scripts/figure.py"
