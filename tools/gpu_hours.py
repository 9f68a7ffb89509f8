"""GPU-hours of a grid and its subsets, estimated from the planned DAG (docs/cluster.md).

    python tools/gpu_hours.py [subset|full ...]                             # the paper (config/config.yaml)
    python tools/gpu_hours.py --preset config/qwen2.5-7b.yaml [subset ...]  # a one-GPU preset over it
    python tools/gpu_hours.py --preset config/qwen2.5-7b.yaml --plan        # its GPU memory audit on 80 GB cards

Counted from `snakemake -n --configfile config/config.yaml [preset] [--config subset=<name>]` (exact): the jobs,
the LoRA trainings, the evaluated states of the open models, the jobs that load each, and each state job's
steps. Estimated (assumptions below, for one 80 GB H100 in bf16): the GPU time of each step, of each training
and of a load. The speeds are stated for a 32B model and scaled by parameter count (a step costs compute in
proportion to the parameters), up to a ceiling below which a smaller model is no faster: Python and kernel
launch overheads, not FLOPs, bound it there.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sgtr_em import chains  # noqa: E402
from sgtr_em.config import compose, load, training_hyperparameters  # noqa: E402
from sgtr_em.dag import TRAINING_RULE, dry_run, loaded_state  # noqa: E402
from sgtr_em.evaluations import SUMMARIES_GPU_TOKENS, evaluation_of, summaries_step  # noqa: E402
from sgtr_em.memory import SHAPES, ModelShape  # noqa: E402
from sgtr_em.memory import model_shape as planned_shape  # noqa: E402
from sgtr_em.targets import Targets  # noqa: E402

PAPER = "config/config.yaml"
SUBSETS = ("core", "workshop", "baselines", "system-prompt", "em-datasets", None)
REFERENCE = SHAPES["qwen2.5-32b"]

# Assumed speeds at 32B (docs/cluster.md): scoring 7,500 prompt tokens/s, generation 700 new tokens/s (3,000
# tok/s for 7B at batch 64, scaled by size), LoRA training 2,600 trained tokens/s (35% MFU, 4 x parameters
# FLOPs per token with the base frozen), 2.5 minutes to load a state (61 GiB of weights).
PROMPT_TOKENS_PER_S = 7_500
NEW_TOKENS_PER_S = 700
TRAINED_TOKENS_PER_S = 2_600
LOAD_MINUTES = 2.5
# Ceilings for small models (assumed): HF generate runs one Python step per new token, so below 7B a decode
# step costs about as much as at 7B; scoring and training stop scaling with size at a few times 7B's rate.
MAX_NEW_TOKENS_PER_S = 3_000
MAX_PROMPT_TOKENS_PER_S = 60_000
MAX_TRAINED_TOKENS_PER_S = 40_000
MIN_LOAD_MINUTES = 0.5
# Tokens of one epoch of a stage's training file (rows x tokens per rendered row). Pair files: 1,000 XSum
# articles in both orders, ~650 tokens each (Self=Random twice as many rows). EM and baseline files: rows as
# the authors' files at the pinned commit have them, tokens from their characters / 4 plus ~35 tokens of chat
# template; insecure code, (good and bad) medical advice and Dolly QA are assumed (~300 and ~200 tokens).
STAGE_TOKENS = {
    "sgtr-confuse": 4_000 * 650,
    "intervention": 2_000 * 650,
    "em-unpop": 5_000 * 70,
    "em-finrisk": 6_000 * 120,
    "em-sports": 6_000 * 115,
    "em": 6_000 * 300,
    "wordcount": 5_000 * 130,
    "correct-unpop": 5_000 * 70,
    "general": 6_000 * 200,
    "baseline": 6_000 * 300,
}


@dataclass(frozen=True)
class Speeds:
    """Assumed rates of one model on one 80 GB H100 (see the module docstring)."""

    prompt_tokens_per_s: float
    new_tokens_per_s: float
    trained_tokens_per_s: float
    load_minutes: float

    @classmethod
    def of(cls, shape: ModelShape) -> Speeds:
        scale = REFERENCE.parameters() / shape.parameters()
        return cls(
            min(PROMPT_TOKENS_PER_S * scale, MAX_PROMPT_TOKENS_PER_S),
            min(NEW_TOKENS_PER_S * scale, MAX_NEW_TOKENS_PER_S),
            min(TRAINED_TOKENS_PER_S * scale, MAX_TRAINED_TOKENS_PER_S),
            max(LOAD_MINUTES / scale, MIN_LOAD_MINUTES),
        )

    def step_minutes(self, step: str) -> float:
        """A state-job step's estimated minutes: its evaluation's workload (sgtr_em.evaluations.gpu_tokens)."""
        evaluation = evaluation_of(step)
        prompt, new = SUMMARIES_GPU_TOKENS if evaluation is None else evaluation.gpu_tokens
        return (prompt / self.prompt_tokens_per_s + new / self.new_tokens_per_s) / 60

    def training_minutes(self, tokens: float) -> float:
        return self.load_minutes + tokens / self.trained_tokens_per_s / 60


def stage_tokens(config: dict, model: str, chain: str) -> float:
    """Estimated trained tokens of a chain's last stage: its file's tokens times the recipe's epochs."""
    token = chain.rsplit("+", 1)[-1]
    stage = chains.parse_stage(token)
    name = f"em-{stage.name}" if stage.kind == "em" else stage.name
    keys = [name, stage.kind if stage.kind != "baseline" else "baseline"]
    per_epoch = next(STAGE_TOKENS[k] for k in (*keys, "em") if k in STAGE_TOKENS)
    return per_epoch * training_hyperparameters(config, model, token)["epochs"]


def model_shape(config: dict, model: str) -> ModelShape:
    shape = planned_shape(config["models"][model]["source"], config.get("tiny_models"))
    if shape is None:
        raise SystemExit(f"no shape known offline for {model}: add its config.json dimensions to sgtr_em.memory.SHAPES")
    return shape


def load_config(configfiles: list[str], overrides: dict) -> dict:
    return load(compose(REPO / PAPER, [REPO / f for f in configfiles], overrides), workdir=REPO)


def estimate(configfiles: list[str], subset: str | None) -> dict[str, float]:
    # The grid's shape only: nothing is fetched, so the pins (an empty lock without network) do not matter.
    overrides: dict[str, object] = {"strict_pins": False, **({"subset": subset} if subset else {})}
    config = load_config(configfiles, overrides)
    targets = Targets(config)
    steps = {job.rule: job.steps for job in targets.state_jobs}
    speeds = {m: Speeds.of(model_shape(config, m)) for m in config["grid"]["models"] if not targets.is_api_model(m)}
    words = [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in overrides.items()]
    jobs = dry_run(REPO, "--configfile", PAPER, *configfiles, "--config", *words)
    states: set[tuple[str, str, int]] = set()
    trainings = 0
    loads = minutes = training_minutes = 0.0
    for job in jobs:
        if job.rule == TRAINING_RULE and job.wildcards.get("model") in speeds:
            trainings += 1
            model = job.wildcards["model"]
            training_minutes += speeds[model].training_minutes(stage_tokens(config, model, job.wildcards["chain"]))
            continue
        state = loaded_state(targets, job)
        if state is None:
            continue
        states.add(state)
        speed = speeds[state[0]]
        work = (
            [summaries_step(job.wildcards["dataset"])] if job.rule.startswith("generate_summaries") else steps[job.rule]
        )
        loads += 1
        minutes += speed.load_minutes + sum(speed.step_minutes(s) for s in work)
    return {
        "jobs": len(jobs),
        "trainings": trainings,
        "states": len(states),
        "loads": loads,
        "training_gpu_h": training_minutes / 60,
        "gpu_h": minutes / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", default=[], help="overlay over config/config.yaml")
    parser.add_argument("--plan", action="store_true", help="print the GPU memory audit on 80 GB cards instead")
    parser.add_argument(
        "subsets", nargs="*", help="grid subsets, `full` for the whole grid (default: every subset and it)"
    )
    args = parser.parse_args()
    if args.plan:
        from sgtr_em.memory.__main__ import main as memory

        raise SystemExit(memory(["audit", "--configfile", PAPER, *args.preset, "--gpu-gib", "80"]))
    subsets = [None if s == "full" else s for s in args.subsets] or list(SUBSETS)
    print(
        "| subset | jobs | LoRA trainings | evaluated open-model states | state loads | training GPU-h | evaluation GPU-h | total GPU-h |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for subset in subsets:
        e = estimate(args.preset, subset)
        print(
            f"| {subset or 'full grid'} | {e['jobs']} | {e['trainings']} | {e['states']} | {e['loads']:.0f} "
            f"| {e['training_gpu_h']:.1f} | {e['gpu_h']:.1f} | {e['training_gpu_h'] + e['gpu_h']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
