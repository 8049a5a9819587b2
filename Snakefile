# afterkernel: the after kernel study (Long, "Properties of the after kernel").
# Stages: data -> training -> kernels -> max-margin SVM -> tables -> figures,
# one rule file each. The config is validated before any job runs.

from snakemake.utils import min_version

min_version("9.0")


# The config is the embedded default (config.yaml) completed by what
# --configfile / --config give, validated before any job runs (rules/common.smk).
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/training.smk"
include: "rules/kernels.smk"
include: "rules/svm.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
    localrule: True
