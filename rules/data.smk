rule prepare_data:
    output:
        "results/data/{problem}.h5",
    log:
        "logs/prepare_data/{problem}.log",
    params:
        problem="{problem}",
        data=config["data"],
        code=code_hash("data", "io"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/prepare_data.py"
