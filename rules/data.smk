# With data.source keras each dataset is downloaded once, by a local rule (on
# the host that runs Snakemake: compute nodes often have no internet), never
# by two jobs at a time into keras' own cache.
rule fetch_data:
    output:
        ak_plan.fetched_keras_file(),
    log:
        ak_plan.log_file("resources", "keras/{dataset}"),
    localrule: True
    conda:
        "../envs/afterkernel.yaml"
    params:
        dataset="{dataset}",
        code=code_hash("fetch_data"),
    script:
        "../scripts/fetch_data.py"


# One problem file per (problem, caps): `subset` is "" for the full data, else
# the caps' tag (.train1000-test250-s0, afterkernel.plan.subset_tag), from
# which the job's caps and seed are read (afterkernel.data.planning.prepare_params).
rule prepare_data:
    input:
        unpack(get_data_inputs),
    output:
        ak_plan.problem_file("{problem}", "{subset}", root=AK_RESULTS),
    log:
        ak_plan.log_file("data", "{problem}{subset}", AK_LOGS),
    conda:
        "../envs/afterkernel.yaml"
    params:
        problem="{problem}",
        data=lambda wc: ak_data.prepare_params(config, wc.subset),
        dataset=lambda wc: ak_data.problem_spec(config, wc.problem),
        code=code_hash("prepare_data"),
    script:
        "../scripts/prepare_data.py"
