# Aggregation and figures read small files: on a cluster they run on the
# submit host instead of waiting in the queue.

from afterkernel.figures import report_section, report_sections

REPORT_SECTIONS = report_sections(config["studies"])


rule aggregate:
    input:
        get_table_inputs(),
    output:
        metrics=report(
            ak_plan.table_file("metrics.csv", AK_RESULTS),
            caption="../report/metrics.rst",
            category=report_section("Tables", REPORT_SECTIONS),
            labels={"table": "metrics: one row per run, snapshot and kernel"},
        ),
        summary=report(
            ak_plan.table_file("summary.csv", AK_RESULTS),
            caption="../report/summary.rst",
            category=report_section("Tables", REPORT_SECTIONS),
            labels={"table": "summary: means over seeds with 95 % intervals"},
        ),
    log:
        ak_plan.log_file("tables", "aggregate", AK_LOGS),
    localrule: True
    conda:
        "../envs/afterkernel.yaml"
    params:
        # the tidy table's rows, each with the files it reads (this rule's input)
        rows=TABLE_ROWS,
        code=code_hash("aggregate"),
    script:
        "../scripts/aggregate.py"


# Which of the paper's claims (§1, §3) this run reproduces, from its own
# numbers: one row per claim and (problem, architecture). The HTML page is
# the report's first section; the CSV is the table itself.
rule claims:
    input:
        metrics=ak_plan.table_file("metrics.csv", AK_RESULTS),
    output:
        html=report(
            ak_plan.table_file("claims.html", AK_RESULTS),
            caption="../report/claims.rst",
            category=report_section("What this run reproduces", REPORT_SECTIONS),
            labels={"table": "the paper's claims, checked on this run"},
        ),
        claims=report(
            ak_plan.table_file("claims.csv", AK_RESULTS),
            caption="../report/claims.rst",
            category=report_section("Tables", REPORT_SECTIONS),
            labels={"table": "claims: the same table as CSV"},
        ),
        markdown=ak_plan.table_file("claims.md", AK_RESULTS),
    log:
        ak_plan.log_file("tables", "claims", AK_LOGS),
    localrule: True
    conda:
        "../envs/afterkernel.yaml"
    params:
        code=code_hash("claims"),
    script:
        "../scripts/claims.py"
