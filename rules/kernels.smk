# One job per training run computes the kernels of all the snapshots the
# studies need: TensorFlow starts once per run, not once per snapshot.
rule kernel:
    input:
        training="results/training/{problem}/{arch}/{aug}/{schedule}/seed{seed}.h5",
        data="results/data/{problem}.h5",
    output:
        gram=gram_output("results/kernels/{problem}/{arch}/{aug}/{schedule}/seed{seed}.gram.h5"),
        metrics="results/kernels/{problem}/{arch}/{aug}/{schedule}/seed{seed}.metrics.h5",
    log:
        "logs/kernel/{problem}/{arch}/{aug}/{schedule}/seed{seed}.log",
    benchmark:
        "results/benchmarks/kernel/{problem}/{arch}/{aug}/{schedule}/seed{seed}.tsv"
    threads: KERNEL_THREADS
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        snapshots=get_kernel_snapshots,
        kernels=get_kernels_params,
        code=code_hash("data", "io", "models", "runtime", "training", "kernels", "transforms", "invariances"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/kernel.py"
