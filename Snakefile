# afterkernel: the after kernel study (Long, "Properties of the after kernel").
# Stages: data -> training -> kernels -> max-margin SVM -> tables -> figures,
# one rule file each. The config is validated before any job runs.

from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the embedded default entirely
# (Snakemake would otherwise merge the two, leaking default studies into it).
if not config:

    configfile: f"{workflow.basedir}/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/training.smk"
include: "rules/kernels.smk"
include: "rules/svm.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
    localrule: True
