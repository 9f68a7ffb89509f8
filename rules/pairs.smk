# Training files of the identity interventions (X): Self++, Self--, Self=Random, pick-longer.


rule build_pairs:
    input:
        articles=T.pair_articles,
        self_summaries=T.pair_self_summaries,
        other_summaries=T.pair_other_summaries,
        prompts=paths.PROMPTS,
    output:
        pairs=paths.PAIRS,
        stats=paths.PAIR_STATS,
    log:
        "logs/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.log",
    conda:
        "../envs/torch.yaml"
    params:
        identity_system_prompt=T.identity_system_prompt,
        comparators=T.pair_comparators,
        confuse_size=config["pairs"]["confuse_size"],
        seed=config["pairs"]["seed"],
        missing_summaries=config["pairs"]["missing_summaries"],
    script:
        "../scripts/build_pairs.py"


rule pairs:
    input:
        T.all_pair_files(),
