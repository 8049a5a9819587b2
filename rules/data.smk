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


def get_fetched_data(wildcards):
    if config["data"]["source"] != "keras":
        return {}
    return {"fetched": ak_plan.fetched_keras_file(ak_plan.dataset(wildcards.problem))}


rule prepare_data:
    input:
        unpack(get_fetched_data),
    output:
        ak_plan.problem_file(),
    log:
        ak_plan.log_file("data", "{problem}"),
    params:
        problem="{problem}",
        data=config["data"],
        code=code_hash("prepare_data"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/prepare_data.py"
