# `snakemake pin_sources` (on a machine with network): pin every remote source the config does not pin itself, in
# config/sources.lock.yaml (downloads are kept in results/data/downloads/ for the run). Not part of `all`;
# it has no output, so it runs whenever it is asked for, and adds only sources not yet locked.


localrules:
    pin_sources,


rule pin_sources:
    log:
        "logs/pin_sources.log",
    conda:
        "../envs/core.yaml"
    params:
        lock_file=locklib.LOCK_FILE,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/lock_sources.py"
