# One job per training run computes the kernels of all the snapshots the
# studies need: TensorFlow starts once per run, not once per snapshot.
rule kernel:
    input:
        training=ak_plan.training_file(),
        data=ak_plan.problem_file(),
    output:
        gram=gram_output(ak_plan.gram_file()),
        metrics=ak_plan.kernel_metrics_file(),
    log:
        ak_plan.log_file("kernels", RUN),
    benchmark:
        ak_plan.benchmark_file("kernels", RUN)
    threads: KERNEL_THREADS
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        snapshots=get_kernel_snapshots,
        kernels=get_kernels_params,
        code=code_hash("kernel"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/kernel.py"
