# With data.source keras each dataset is downloaded once, by a local rule (on
# the host that runs Snakemake: compute nodes often have no internet), never
# by two jobs at a time into keras' own cache.
rule fetch_data:
    localrule: True
    output:
        ak_plan.fetched_keras_file(),
    log:
        ak_plan.log_file("resources", "keras/{dataset}"),
    params:
        dataset="{dataset}",
        code=code_hash("fetch_data"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/fetch_data.py"


def get_data_inputs(wildcards):
    """Rule fetch_data's file (keras), else the files the problem's data are
    read from: replacing one re-runs exactly its problems."""
    return ak_data.problem_inputs(config, wildcards.problem, ak_plan.fetched_keras_file)


rule prepare_data:
    input:
        unpack(get_data_inputs),
    output:
        ak_plan.problem_file(),
    log:
        ak_plan.log_file("data", "{problem}"),
    params:
        problem="{problem}",
        data=config["data"],
        dataset=lambda wc: ak_data.problem_spec(config, wc.problem),
        code=code_hash("prepare_data"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/prepare_data.py"
