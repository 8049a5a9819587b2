rule train:
    input:
        data="results/data/{problem}.h5",
    output:
        "results/training/{problem}/{arch}/{aug}/{schedule}/seed{seed}.h5",
    log:
        "logs/train/{problem}/{arch}/{aug}/{schedule}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{problem}/{arch}/{aug}/{schedule}/seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        training=get_training_params,
        arch_name="{arch}",
        seed=lambda wc: int(wc.seed),
        code=code_hash("data", "io", "models", "runtime", "training"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/train.py"
