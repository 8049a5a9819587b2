rule train:
    input:
        data=ak_plan.problem_file(),
    output:
        ak_plan.training_file(),
    log:
        ak_plan.log_file("training", RUN),
    benchmark:
        ak_plan.benchmark_file("training", RUN)
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        training=get_training_params,
        arch_name="{arch}",
        seed=lambda wc: int(wc.seed),
        code=code_hash("train"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/train.py"
