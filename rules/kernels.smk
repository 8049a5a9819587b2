# One job per training run computes the kernels of all the snapshots the
# studies need: TensorFlow starts once per run, not once per snapshot.
rule kernel:
    input:
        training=ak_plan.training_file(root=AK_RESULTS),
        data=get_problem_file,
    output:
        gram=gram_output(ak_plan.gram_file(root=AK_RESULTS)),
        metrics=ak_plan.kernel_metrics_file(root=AK_RESULTS),
    log:
        ak_plan.log_file("kernels", RUN, AK_LOGS),
    benchmark:
        ak_plan.benchmark_file("kernels", RUN, AK_RESULTS)
    conda:
        tensorflow_env("kernel")
    threads: KERNEL_THREADS
    resources:
        # the cost model (afterkernel.cost); × attempt on retries
        mem_mb=lambda wc, attempt: ak_cost.kernel_cost(config, run_of(wc), KERNEL_RUNS[run_of(wc)]).request_mb()
        * attempt,
        runtime=lambda wc, threads, attempt: ak_cost.kernel_cost(
            config, run_of(wc), KERNEL_RUNS[run_of(wc)]
        ).runtime_minutes(threads)
        * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        snapshots=get_kernel_snapshots,
        kernels=get_kernels_params,
        code=lambda wc: code_hash("kernel", wc.arch),
    script:
        "../scripts/kernel.py"
