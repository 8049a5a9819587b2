rule svm:
    input:
        gram=ak_plan.gram_file(),
    output:
        ak_plan.svm_file(),
    log:
        ak_plan.log_file("svm", ak_plan.svm_name()),
    benchmark:
        ak_plan.benchmark_file("svm", ak_plan.svm_name())
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        snapshot="{snapshot}",
        kernel="{kernel}",
        svm=config["svm"],
        code=code_hash("svm"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/svm.py"
