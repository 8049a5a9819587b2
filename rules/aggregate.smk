from afterkernel.aggregate import add_families


# Aggregation and figures read small files: on a cluster they run on the
# submit host instead of waiting in the queue.
rule aggregate:
    localrule: True
    input:
        training=get_training_outputs(),
        kernel_metrics=get_kernel_metrics_outputs(),
        svm=get_svm_outputs(),
    output:
        metrics=report(
            "results/tables/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
    log:
        "logs/aggregate.log",
    params:
        # the tidy table's rows, with the width study's network family
        rows=add_families(get_rows_param(), config["studies"].get("width")),
        code=code_hash("io", "aggregate", "training"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/aggregate.py"


# Which of the paper's claims (§1, §3) this run reproduces, from its own
# numbers: one row per claim and (problem, architecture).
rule claims:
    localrule: True
    input:
        metrics="results/tables/metrics.csv",
    output:
        claims=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="What this run reproduces",
        ),
        markdown="results/tables/claims.md",
    log:
        "logs/claims.log",
    params:
        code=code_hash("io", "aggregate", "claims"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/claims.py"
