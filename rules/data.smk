rule prepare_data:
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
