rule train:
    input:
        data=get_problem_file,
    output:
        ak_plan.training_file(root=AK_RESULTS),
    log:
        ak_plan.log_file("training", RUN, AK_LOGS),
    benchmark:
        ak_plan.benchmark_file("training", RUN, AK_RESULTS)
    conda:
        tensorflow_env("train")
    threads: 1
    resources:
        # the cost model (afterkernel.cost, constants in cost.COSTS): upper bounds
        # for a learning-rate run (max_epochs) and on a GPU; × attempt on retries
        mem_mb=lambda wc, attempt: ak_cost.train_cost(config, run_of(wc), TRAINING_RUNS[run_of(wc)]).request_mb()
        * attempt,
        runtime=lambda wc, threads, attempt: ak_cost.train_cost(
            config, run_of(wc), TRAINING_RUNS[run_of(wc)]
        ).runtime_minutes(threads)
        * attempt,
        tf_gpu=TF_GPU_UNITS,
    params:
        training=get_training_params,
        arch_name="{arch}",
        seed=lambda wc: int(wc.seed),
        code=lambda wc: code_hash("train", wc.arch),
    script:
        "../scripts/train.py"
