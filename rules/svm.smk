rule svm:
    input:
        gram="results/kernels/{problem}/{arch}/{aug}/{schedule}/seed{seed}.gram.h5",
    output:
        "results/svm/{problem}/{arch}/{aug}/{schedule}/seed{seed}/{snapshot}.{kernel}.h5",
    log:
        "logs/svm/{problem}/{arch}/{aug}/{schedule}/seed{seed}/{snapshot}.{kernel}.log",
    benchmark:
        "results/benchmarks/svm/{problem}/{arch}/{aug}/{schedule}/seed{seed}/{snapshot}.{kernel}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        snapshot="{snapshot}",
        kernel="{kernel}",
        svm=config["svm"],
        code=code_hash("io", "maxmargin"),
    conda:
        "../envs/afterkernel.yaml"
    script:
        "../scripts/svm.py"
