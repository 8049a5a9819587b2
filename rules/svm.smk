rule svm:
    input:
        gram=ak_plan.gram_file(root=AK_RESULTS),
    output:
        ak_plan.svm_file(root=AK_RESULTS),
    log:
        ak_plan.log_file("svm", ak_plan.svm_name(), AK_LOGS),
    benchmark:
        ak_plan.benchmark_file("svm", ak_plan.svm_name(), AK_RESULTS)
    # before any new kernel job: each SVM that runs brings its Gram file (GBs at
    # full scale, temporary) closer to deletion
    priority: 10
    conda:
        "../envs/afterkernel.yaml"
    threads: 1
    resources:
        # the cost model (afterkernel.cost); × attempt on retries
        mem_mb=lambda wc, attempt: ak_cost.svm_cost(config, run_of(wc)).request_mb() * attempt,
        runtime=lambda wc, threads, attempt: ak_cost.svm_cost(config, run_of(wc)).runtime_minutes(threads) * attempt,
    params:
        snapshot="{snapshot}",
        kernel="{kernel}",
        svm=config["svm"],
        code=code_hash("svm"),
    script:
        "../scripts/svm.py"
