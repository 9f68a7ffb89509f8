"""The paper's claims checked on evaluation results: effect sizes, intervals, a one-sided test and a verdict.

A claim (config `claims.list`) compares two conditions (chains) of one target model on one evaluation,
protocol and metric: the treatment against the reference, with the direction the paper reports (`increase`:
treatment above reference, `decrease`: below). With `toward: c` the compared quantity is the distance of
the metric from c (e.g. "EM pulls self-recognition toward chance": |EM − 0.5| below |base − 0.5|).

Per claim and model:
- effect: difference of the condition means (each the mean over seeds of the seed's metric), and with
  `ratio: true` their ratio;
- interval: a hierarchical bootstrap percentile interval: per resample and condition, seeds are drawn with
  replacement, then within each drawn seed its items (questions, articles, answers) with replacement; a
  seed whose per-item records do not reproduce its metric is resampled as a whole;
- test: a one-sided Welch t-test over seeds in the paper's direction (`scipy.stats.ttest_ind`);
- verdict: `reproduced` (the interval lies on the paper's side of 0), `not reproduced` (it lies on the
  other side, or it misses the paper's effect by more than `claims.margin` where the paper's protocol was
  run), `inconclusive` otherwise; `not run` when a condition has no results. A claim whose conditions
  answer outside the answer format more often than `claims.max_invalid_rate` (the evaluation's
  `invalid_rate` in the claim's protocol) is `inconclusive` whatever its interval: its effect may come
  from the format alone (a model that no longer answers with a letter looks less truthful).

The paper's effect comes from its published means of both conditions (`published_numbers.yaml`, same
evaluation kind, comparator and model), or from `paper_effect` / `paper_ratio` in the claim when the paper
states an effect itself; it is left empty otherwise. Everything is seeded: the same inputs give the same
numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import chains
from .aggregate import comparator_of
from .bootstrap import generator, percentile_interval, resampled_item_means
from .evaluations import evaluation_of, function, table_kind
from .io import read_csv, read_json

INCREASE, DECREASE = "increase", "decrease"
DIRECTIONS = (INCREASE, DECREASE)
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
SEEDS_AND_ITEMS, SEEDS_ONLY = "seeds, then items", "seeds only"
# A seed's items reproduce its metric when their mean is this close to it.
ITEM_TOLERANCE = 1e-6

CLAIM_COLUMNS = [
    "model",
    "claim_id",
    "claim",
    "evaluation",
    "comparator",
    "protocol",
    "metric",
    "treatment",
    "treatment_label",
    "reference",
    "reference_label",
    "direction",
    "toward",
    "n_seeds_treatment",
    "n_seeds_reference",
    "n_items_treatment",
    "n_items_reference",
    "resampling",
    "mean_treatment",
    "mean_reference",
    "effect",
    "ci_low",
    "ci_high",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "test",
    "t_statistic",
    "df",
    "p_value",
    "paper_protocol",
    "paper_treatment",
    "paper_reference",
    "paper_effect",
    "paper_ratio",
    "paper_source",
    "margin",
    "confidence",
    "bootstrap_resamples",
    "bootstrap_seed",
    "invalid_rate_treatment",
    "invalid_rate_reference",
    "max_invalid_rate",
    "verdict",
    "reason",
    "basis",
]


@dataclass(frozen=True)
class Settings:
    """How claims are checked (config `claims`)."""

    confidence: float = 0.95
    bootstrap_resamples: int = 2000
    seed: int = 0
    margin: float | None = 0.1
    max_invalid_rate: float = 0.2

    @classmethod
    def from_config(cls, claims: Mapping[str, Any]) -> Settings:
        return cls(
            confidence=float(claims["confidence"]),
            bootstrap_resamples=int(claims["bootstrap_resamples"]),
            seed=int(claims["seed"]),
            margin=None if claims.get("margin") is None else float(claims["margin"]),
            max_invalid_rate=float(claims.get("max_invalid_rate", cls.max_invalid_rate)),
        )


@dataclass(frozen=True)
class Claim:
    """One claim resolved for a model (`Targets.model_claims` gives them as dicts of these fields):
    `evaluation` is a table name (e.g. `self_recognition-claude-21`), `protocol` None means the evaluation's
    primary protocol (else its first); `not_run` is the reason when the run cannot check it (a condition
    outside the model's grid, an evaluation switched off)."""

    id: str
    claim: str
    evaluation: str
    metric: str
    treatment: str
    reference: str
    direction: str
    protocol: str | None = None
    toward: float | None = None
    ratio: bool = False
    paper_effect: float | None = None
    paper_ratio: float | None = None
    not_run: str | None = None
    # What the claim rests on: the authors' conditions, or extensions of ours (`Targets.model_claims`).
    basis: str = ""


# ------------------------------------------------------------------------------------- per-item data --


@dataclass
class SeedSample:
    """One seed of one condition: its metric (the evaluation JSON's number) and, when the per-item records
    reproduce it, the per-item values whose mean it is."""

    seed: int
    value: float
    items: np.ndarray | None = None


def item_values(evaluation: Mapping[str, Any], protocol: str, metric: str) -> np.ndarray | None:
    """Per-item values of one metric whose mean is the evaluation's metric, or None when the records do not
    give them (an unknown metric or record layout, or values whose mean is not the metric: then the seed is
    resampled whole)."""
    registered = evaluation_of(evaluation["eval"])
    reader = function(registered.items) if registered is not None and registered.items else None
    expected = evaluation.get("metrics", {}).get(protocol, {}).get(metric)
    if reader is None or expected is None:
        return None
    values = [v for record in evaluation.get("records") or [] if (v := reader(record, protocol, metric)) is not None]
    if not values:
        return None
    items = np.asarray(values, dtype=float)
    return items if abs(float(items.mean()) - float(expected)) <= ITEM_TOLERANCE else None


def primary_protocol(evaluations: Iterable[Mapping[str, Any]]) -> str | None:
    """The protocol a claim uses when it names none: the evaluations' primary protocol, else their first."""
    for evaluation in evaluations:
        protocol = evaluation.get("primary_protocol")
        if protocol and protocol in evaluation.get("metrics", {}):
            return str(protocol)
        if evaluation.get("metrics"):
            return str(next(iter(evaluation["metrics"])))
    return None


@dataclass
class Results:
    """Evaluation JSONs of one target model, by (evaluation, chain) and seed."""

    model: str
    by_condition: dict[tuple[str, str], dict[int, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, evaluations: Iterable[Mapping[str, Any]], model: str) -> Results:
        results = cls(model)
        for evaluation in evaluations:
            state = evaluation["model_state"]
            if state["model"] != model:
                continue
            key = (evaluation["eval"], state["chain"])
            results.by_condition.setdefault(key, {})[int(state["seed"])] = dict(evaluation)
        return results

    def seeds(self, evaluation: str, chain: str) -> dict[int, dict[str, Any]]:
        return self.by_condition.get((evaluation, chain), {})

    def samples(self, evaluation: str, chain: str, protocol: str, metric: str) -> list[SeedSample]:
        """Every seed of a condition that has the metric, in seed order."""
        out = []
        for seed, result in sorted(self.seeds(evaluation, chain).items()):
            value = result.get("metrics", {}).get(protocol, {}).get(metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            out.append(SeedSample(seed, float(value), item_values(result, protocol, metric)))
        return out


def load_evaluations(paths: Iterable[str | Path], model: str | None = None) -> list[dict[str, Any]]:
    """Evaluation JSONs from files and eval folders (laid out `<eval>/<model>/<chain>/seed<N>.json`: every one
    under it, or only `model`'s), in path order."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.glob(f"*/{model}/*/seed*.json" if model else "*/*/*/seed*.json"))
        else:
            files = [path]
        out += [read_json(f) for f in files]
    return out


# ------------------------------------------------------------------------------------- statistics --


def _transform(values: np.ndarray | float, toward: float | None) -> Any:
    """The compared quantity: the metric, or its distance from `toward`."""
    return values if toward is None else np.abs(np.asarray(values) - toward)


def condition_mean(samples: Sequence[SeedSample]) -> float:
    """The mean over seeds of the seeds' metrics."""
    return float(np.mean([s.value for s in samples]))


def resampled_means(samples: Sequence[SeedSample], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap distribution of a condition's mean: per resample, the seeds drawn with replacement, then
    within each drawn seed its items drawn with replacement (a seed without items counts its metric)."""
    n = len(samples)
    picks = rng.integers(0, n, size=(resamples, n))
    seed_means = np.empty((resamples, n))
    for index, sample in enumerate(samples):
        chosen = picks == index
        count = int(chosen.sum())
        if not count:
            continue
        if sample.items is None:
            seed_means[chosen] = sample.value
        else:
            seed_means[chosen] = resampled_item_means(sample.items, count, rng)
    return seed_means.mean(axis=1)


@dataclass(frozen=True)
class Effect:
    """An effect of the treatment over the reference with its bootstrap interval and one-sided test."""

    mean_treatment: float
    mean_reference: float
    effect: float
    ci_low: float
    ci_high: float
    ratio: float | None
    ratio_ci_low: float | None
    ratio_ci_high: float | None
    t_statistic: float
    df: float
    p_value: float
    test: str


def _ratio(numerator: Any, denominator: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(numerator, denominator)


def estimate(
    treatment: Sequence[SeedSample],
    reference: Sequence[SeedSample],
    *,
    direction: str,
    toward: float | None = None,
    ratio: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator,
) -> Effect:
    """The effect of `treatment` over `reference` (difference of condition means, of their distances from
    `toward` when given), its hierarchical-bootstrap percentile interval, the ratio when asked, and a
    one-sided Welch t-test over seeds in `direction`."""
    from scipy import stats

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    mean_t, mean_r = condition_mean(treatment), condition_mean(reference)
    point_t, point_r = float(_transform(mean_t, toward)), float(_transform(mean_r, toward))
    boot_t = _transform(resampled_means(treatment, resamples, rng), toward)
    boot_r = _transform(resampled_means(reference, resamples, rng), toward)
    low, high = percentile_interval(boot_t - boot_r, confidence)
    ratio_point = ratio_low = ratio_high = None
    if ratio:
        ratio_point = float(_ratio(point_t, point_r))
        boot_ratio = _ratio(boot_t, boot_r)
        if np.isfinite(boot_ratio).all():
            ratio_low, ratio_high = percentile_interval(boot_ratio, confidence)
    seeds_t = _transform(np.array([s.value for s in treatment]), toward)
    seeds_r = _transform(np.array([s.value for s in reference]), toward)
    t_statistic = df = p_value = float("nan")
    test = "one-sided Welch t-test over seeds"
    if len(seeds_t) < 2 or len(seeds_r) < 2:
        test += " (not run: needs 2 seeds per condition)"
    elif np.ptp(seeds_t) == 0 and np.ptp(seeds_r) == 0:
        test += " (not run: no variation between seeds)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ttest_ind(
                seeds_t, seeds_r, equal_var=False, alternative="greater" if direction == INCREASE else "less"
            )
        t_statistic, p_value, df = float(result.statistic), float(result.pvalue), float(result.df)
    return Effect(
        mean_treatment=mean_t,
        mean_reference=mean_r,
        effect=point_t - point_r,
        ci_low=float(low),
        ci_high=float(high),
        ratio=ratio_point,
        ratio_ci_low=ratio_low,
        ratio_ci_high=ratio_high,
        t_statistic=t_statistic,
        df=df,
        p_value=p_value,
        test=test,
    )


def verdict(
    direction: str,
    ci_low: float,
    ci_high: float,
    *,
    paper_effect: float | None = None,
    margin: float | None = None,
    confidence: float = 0.95,
) -> tuple[str, str]:
    """(verdict, reason) of an effect's interval against the paper's direction and, when given with a
    margin, the paper's effect."""
    percent = f"{confidence:.0%}"
    interval = f"the {percent} interval [{ci_low:+.3f}, {ci_high:+.3f}]"
    right = ci_low > 0 if direction == INCREASE else ci_high < 0
    wrong = ci_high < 0 if direction == INCREASE else ci_low > 0
    if wrong:
        return NOT_REPRODUCED, f"{interval} excludes 0 on the other side of the paper's {direction}"
    if (
        paper_effect is not None
        and margin is not None
        and (paper_effect < ci_low - margin or paper_effect > ci_high + margin)
    ):
        return (
            NOT_REPRODUCED,
            f"{interval} is more than the margin {margin:g} away from the paper's effect {paper_effect:+.3f}",
        )
    if right:
        return REPRODUCED, f"{interval} excludes 0 in the paper's direction ({direction})"
    return INCONCLUSIVE, f"{interval} includes 0"


# ---------------------------------------------------------------------------------- the paper's side --


@dataclass(frozen=True)
class PaperEffect:
    protocol: str = ""
    treatment: float | None = None
    reference: float | None = None
    effect: float | None = None
    ratio: float | None = None
    source: str = ""


def paper_effect(claim: Claim, paper: Mapping[str, Any] | None, comparator: str | None) -> PaperEffect:
    """The paper's effect for a claim: stated in the claim, or from the published means of both conditions
    (the model's entry of published_numbers.yaml; self-recognition only against the same comparator)."""
    kind, _ = table_kind(claim.evaluation)
    published = ((paper or {}).get("evals") or {}).get(kind) or {}
    if published and kind == "self_recognition" and published.get("comparator") not in (None, comparator):
        published = {}
    protocol = str(published.get("protocol", "")) if published else ""
    values = published.get("values") or {}
    mean_t = (values.get(claim.treatment) or {}).get("mean")
    mean_r = (values.get(claim.reference) or {}).get("mean")
    if claim.paper_effect is not None or claim.paper_ratio is not None:
        return PaperEffect(protocol, mean_t, mean_r, claim.paper_effect, claim.paper_ratio, "stated in the paper")
    if mean_t is None or mean_r is None:
        return PaperEffect(protocol, mean_t, mean_r)
    point_t, point_r = float(_transform(mean_t, claim.toward)), float(_transform(mean_r, claim.toward))
    return PaperEffect(
        protocol,
        mean_t,
        mean_r,
        point_t - point_r,
        float(_ratio(point_t, point_r)) if claim.ratio else None,
        "published means of both conditions",
    )


# ------------------------------------------------------------------------------------------ a model --


def _rng(settings: Settings, model: str, claim: Claim) -> np.random.Generator:
    """A claim's own bootstrap stream: independent of the other claims and of their order."""
    return generator(settings.seed, "claims", model, claim.id)


def check_claim(
    claim: Claim, results: Results, settings: Settings, paper: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One row of results/claims/<model>.csv."""
    treatment_runs, reference_runs = (results.seeds(claim.evaluation, c) for c in (claim.treatment, claim.reference))
    protocol = claim.protocol or primary_protocol([*treatment_runs.values(), *reference_runs.values()]) or ""
    comparator = next((comparator_of(e) for e in (*treatment_runs.values(), *reference_runs.values())), None)
    if comparator is None:
        comparator = table_kind(claim.evaluation)[1]
    row: dict[str, Any] = {
        "model": results.model,
        "claim_id": claim.id,
        "claim": claim.claim,
        "evaluation": claim.evaluation,
        "comparator": comparator or "",
        "protocol": protocol,
        "metric": claim.metric,
        "treatment": claim.treatment,
        "treatment_label": _label(claim.treatment),
        "reference": claim.reference,
        "reference_label": _label(claim.reference),
        "direction": claim.direction,
        "toward": claim.toward,
        "margin": settings.margin,
        "confidence": settings.confidence,
        "bootstrap_resamples": settings.bootstrap_resamples,
        "bootstrap_seed": settings.seed,
        "basis": claim.basis,
    }
    paper_side = paper_effect(claim, paper, comparator)
    row.update(
        {
            "paper_protocol": paper_side.protocol,
            "paper_treatment": paper_side.treatment,
            "paper_reference": paper_side.reference,
            "paper_effect": paper_side.effect,
            "paper_ratio": paper_side.ratio,
            "paper_source": paper_side.source,
        }
    )
    treatment = results.samples(claim.evaluation, claim.treatment, protocol, claim.metric)
    reference = results.samples(claim.evaluation, claim.reference, protocol, claim.metric)
    missing = [chain for chain, samples in ((claim.treatment, treatment), (claim.reference, reference)) if not samples]
    if claim.not_run or missing:
        reason = claim.not_run or (
            f"no {claim.evaluation} {protocol} {claim.metric} results of {' and '.join(missing)} for {results.model}"
        )
        return {**row, "verdict": NOT_RUN, "reason": reason}
    effect = estimate(
        treatment,
        reference,
        direction=claim.direction,
        toward=claim.toward,
        ratio=claim.ratio,
        confidence=settings.confidence,
        resamples=settings.bootstrap_resamples,
        rng=_rng(settings, results.model, claim),
    )
    same_protocol = paper_side.protocol in ("", protocol)
    outcome, reason = verdict(
        claim.direction,
        effect.ci_low,
        effect.ci_high,
        paper_effect=paper_side.effect if same_protocol else None,
        margin=settings.margin,
        confidence=settings.confidence,
    )
    if paper_side.effect is not None and not same_protocol:
        reason += f" (the paper's effect is from the {paper_side.protocol} protocol: not compared)"
    invalid = {
        chain: condition_mean(samples) if samples else None
        for chain, samples in (
            (chain, results.samples(claim.evaluation, chain, protocol, "invalid_rate"))
            for chain in (claim.treatment, claim.reference)
        )
    }
    off_format = [
        (chain, rate) for chain, rate in invalid.items() if rate is not None and rate > settings.max_invalid_rate
    ]
    if off_format and outcome != INCONCLUSIVE:
        outcome = INCONCLUSIVE
        worst, rate = max(off_format, key=lambda pair: pair[1])
        reason += (
            f", but {rate:.0%} of {_label(worst)}'s answers are outside the answer format (more than "
            f"claims.max_invalid_rate {settings.max_invalid_rate:g}): the effect may measure the format, not the claim"
        )
    all_items = [*treatment, *reference]
    return {
        **row,
        "n_seeds_treatment": len(treatment),
        "n_seeds_reference": len(reference),
        "n_items_treatment": sum(0 if s.items is None else len(s.items) for s in treatment),
        "n_items_reference": sum(0 if s.items is None else len(s.items) for s in reference),
        "resampling": SEEDS_AND_ITEMS if all(s.items is not None for s in all_items) else SEEDS_ONLY,
        "mean_treatment": effect.mean_treatment,
        "mean_reference": effect.mean_reference,
        "effect": effect.effect,
        "ci_low": effect.ci_low,
        "ci_high": effect.ci_high,
        "ratio": effect.ratio,
        "ratio_ci_low": effect.ratio_ci_low,
        "ratio_ci_high": effect.ratio_ci_high,
        "test": effect.test,
        "t_statistic": effect.t_statistic,
        "df": effect.df,
        "p_value": effect.p_value,
        "invalid_rate_treatment": invalid[claim.treatment],
        "invalid_rate_reference": invalid[claim.reference],
        "max_invalid_rate": settings.max_invalid_rate,
        "verdict": outcome,
        "reason": reason,
    }


def _label(chain: str) -> str:
    try:
        return chains.label(chain)
    except chains.ChainError:
        return chain


def check_claims(
    claims: Iterable[Claim],
    evaluations: Iterable[Mapping[str, Any]],
    model: str,
    settings: Settings,
    paper: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every claim checked on one target model's evaluation JSONs, in the claims' order."""
    results = Results.of(evaluations, model)
    return [check_claim(claim, results, settings, paper) for claim in claims]


# ---------------------------------------------------------------------------------------- reading --


NUMBER_COLUMNS = (
    "toward",
    "mean_treatment",
    "mean_reference",
    "effect",
    "ci_low",
    "ci_high",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "t_statistic",
    "df",
    "p_value",
    "paper_treatment",
    "paper_reference",
    "paper_effect",
    "paper_ratio",
    "margin",
    "confidence",
    "invalid_rate_treatment",
    "invalid_rate_reference",
    "max_invalid_rate",
)


def read_claims(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a claims CSV, numbers parsed (None where empty)."""
    rows = []
    for row in read_csv(path):
        parsed: dict[str, Any] = dict(row)
        for column in NUMBER_COLUMNS:
            text = row.get(column, "")
            parsed[column] = float(text) if text not in ("", None) else None
        rows.append(parsed)
    return rows


def _signed(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.{digits}f}"


def ours_cell(row: Mapping[str, Any]) -> str:
    """`+0.123 [+0.080, +0.170]` (and `×1.53 [1.31, 1.80]` with a ratio), — when not run."""
    if row["verdict"] == NOT_RUN or row["effect"] is None:
        return "—"
    text = f"{_signed(row['effect'])} [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"
    if row.get("ratio") is not None:
        low, high = row.get("ratio_ci_low"), row.get("ratio_ci_high")
        interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
        text += f"; ×{row['ratio']:.2f}{interval}"
    return text


def paper_cell(row: Mapping[str, Any]) -> str:
    if row["paper_effect"] is None and row.get("paper_ratio") is None:
        return "—"
    parts = []
    if row["paper_effect"] is not None:
        parts.append(_signed(row["paper_effect"]))
    if row.get("paper_ratio") is not None:
        parts.append(f"×{row['paper_ratio']:.2f}")
    protocol = f" ({row['paper_protocol']})" if row.get("paper_protocol") else ""
    return "; ".join(parts) + protocol


def comparison_cell(row: Mapping[str, Any]) -> str:
    toward = f", distance from {row['toward']:g}" if row.get("toward") is not None else ""
    return (
        f"{row['treatment_label']} vs {row['reference_label']}: {row['evaluation']} "
        f"{row['metric']} ({row['protocol'] or '?'}{toward})"
    )


SUMMARY_HEADER = ["Claim", "Comparison", "Ours: effect [95% CI]", "Paper", "Rests on", "Verdict"]


def summary_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The claims table of the results summary: claim, comparison, ours with interval, the paper's, what the
    claim rests on (the authors' conditions or extensions of ours), verdict."""
    confidence = next((r["confidence"] for r in rows if r.get("confidence")), 0.95)
    header = [*SUMMARY_HEADER]
    header[2] = f"Ours: effect [{confidence:.0%} CI]"
    body = [
        [
            row["claim"],
            comparison_cell(row),
            ours_cell(row),
            paper_cell(row),
            row.get("basis") or "—",
            verdict_cell(row),
        ]
        for row in rows
    ]
    return header, body


def verdict_cell(row: Mapping[str, Any]) -> str:
    """The verdict, with the share of answers outside the answer format where that decided it."""
    limit = row.get("max_invalid_rate")
    rates = [r for r in (row.get("invalid_rate_treatment"), row.get("invalid_rate_reference")) if r is not None]
    if limit is None or not rates or max(rates) <= limit:
        return str(row["verdict"])
    return f"{row['verdict']} ({max(rates):.0%} of answers outside the answer format)"
