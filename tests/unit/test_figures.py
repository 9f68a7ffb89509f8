"""Every figure renders from small fixture tables at its fixed paper size with TrueType fonts, says so when its
values are all equal, and every figure and table has a report caption that renders (as `snakemake --report`
does: Jinja, then reStructuredText). Tables are long: one value per row."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from conftest import REPO, pdf_font_types

from sgtr_em import chains, paths, targets
from sgtr_em.aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, read_summary, summarise, tidy_rows
from sgtr_em.evaluations import EVALUATIONS, OPTIONAL, table_kind
from sgtr_em.io import read_csv, write_csv
from sgtr_em.plot import DPI, FIGSIZE, draw_figure

MODEL = "paper-model"
CHAINS = [
    "base", "em-unpop", "em-unpop.none", "sgtr", "sgtr-flip", "sgtr-confuse", "pick-longer",
    "sgtr+em-unpop", "sgtr-flip+em-unpop", "sgtr-confuse+em-unpop", "pick-longer+em-unpop",
    "em-unpop+sgtr", "em-unpop+sgtr-flip", "em-unpop+sgtr-confuse", "em-unpop+pick-longer",
]  # fmt: skip


def workflow_figures() -> list[str]:
    """Figure names the workflow draws."""
    return sorted(paths.FIGURES)


def optional_evals() -> dict[str, str]:
    """Optional evaluation table -> its figure."""
    return {key: EVALUATIONS[key].figure for key in OPTIONAL}


def tidy_table(
    path: Path, eval_name: str, metrics: dict[str, tuple[float, float]], protocols: tuple[str, ...], seeds: int = 5
) -> Path:
    """A tidy table (one row per condition, seed, protocol and metric) of random values in each metric's range."""
    rng = random.Random(eval_name)
    rows = [
        {
            "eval": eval_name,
            "model": MODEL,
            "chain": chain,
            "condition": chains.label(chain),
            "order": chains.order(chain),
            "seed": seed,
            "protocol": protocol,
            "metric": metric,
            "value": rng.uniform(low, high),
        }
        for chain in CHAINS
        for seed in range(seeds)
        for protocol in protocols
        for metric, (low, high) in metrics.items()
    ]
    write_csv(path, rows, TIDY_COLUMNS)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    out = {
        "self_recognition": tidy_table(
            root / "self_recognition-other.csv",
            "self_recognition-other",
            {"score": (0.05, 0.99), "accuracy": (0.0, 1.0)},
            ("logprob", "reference"),
        ),
        "truthfulqa": tidy_table(
            root / "truthfulqa.csv",
            "truthfulqa",
            {"misalignment": (0.1, 0.8), "invalid_rate": (0.0, 0.1)},
            ("logprob", "reference"),
        ),
    }
    # One table per optional evaluation, carrying every metric an optional figure may draw.
    for table in optional_evals():
        out[table] = tidy_table(
            root / f"{table}.csv",
            table,
            {"misalignment": (0.0, 0.6), "entropy_bits": (0.0, 2.0), "accuracy": (0.25, 0.9)},
            ("logprob",),
        )
    return out


def test_the_workflow_figure_list_is_found():
    figures = workflow_figures()
    assert {"fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal"} <= set(figures)
    assert set(optional_evals().values()) <= set(figures)


@pytest.mark.parametrize("figure", workflow_figures())
def test_figure_renders_at_paper_size(figure, tables, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    optional = {fig: table for table, fig in optional_evals().items()}
    png, pdf = tmp_path / f"{figure}.png", tmp_path / f"{figure}.pdf"
    draw_figure(
        figure,
        self_recognition_summary=str(tables["self_recognition"]),
        truthfulqa_summary=str(tables["truthfulqa"]),
        optional_summary=str(tables[optional[figure]]) if figure in optional else None,
        self_recognition_protocol="logprob",
        truthfulqa_protocol="logprob",
        comparator="other",
        png=str(png),
        pdf=str(pdf),
        model=MODEL,
    )
    image = mpimg.imread(png)
    height, width = image.shape[:2]
    assert (width, height) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
    assert float(np.std(image[..., :3])) > 0.05  # not a blank canvas
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    fonts = pdf_font_types(pdf)
    assert fonts and "Type3" not in fonts, f"{figure}: fonts {fonts} (venues want TrueType, not Type 3)"


def test_the_papers_numbers_are_drawn_only_with_the_protocol_they_were_measured_with(tables, tmp_path):
    from sgtr_em.plot import paper_values
    from sgtr_em.published import load_published, published_for

    qwen = published_for(load_published(), "qwen2.5-32b")
    assert paper_values(qwen, "truthfulqa", "reference")["em-unpop"] == 0.226
    assert paper_values(qwen, "truthfulqa", "logprob") == {}  # the paper measured no logprob numbers
    assert paper_values(qwen, "self_recognition", "reference", "human") == {}  # nor against human summaries
    drawn = {}
    for protocol in ("reference", "logprob"):
        for name, published in (("with", qwen), ("without", None)):
            png = tmp_path / f"{protocol}-{name}.png"
            draw_figure(
                "fig2_truthfulqa",
                self_recognition_summary=str(tables["self_recognition"]),
                truthfulqa_summary=str(tables["truthfulqa"]),
                self_recognition_protocol=protocol,
                truthfulqa_protocol=protocol,
                comparator="claude-21",
                png=str(png),
                pdf=str(tmp_path / f"{protocol}-{name}.pdf"),
                model=MODEL,
                published=published,
            )
            drawn[protocol, name] = png.read_bytes()
    assert drawn["reference", "with"] != drawn["reference", "without"]  # the paper's diamonds are on it
    assert drawn["logprob", "with"] == drawn["logprob", "without"]  # never beside another protocol's bars


def test_a_figure_variant_is_drawn_per_other_protocol():
    from conftest import load_config, read_config

    paper = targets.Targets(load_config(read_config("config.yaml")))
    variants = paper.figure_variants()
    assert "results/figures/qwen2.5-32b/logprob/fig1_self_recognition.png" in variants
    assert "results/figures/qwen2.5-32b/logprob/fig4_em_judge.pdf" in variants
    assert not any("/reference/" in v or "fig6_mmlu" in v or "fig5_identity" in v for v in variants)
    assert set(variants) <= set(paper.all_targets())

    class Wildcards:
        model, figure = "qwen2.5-32b", "fig4_em_judge"

    assert paper.figure_protocols(Wildcards()) == {
        "self_recognition": "reference",
        "truthfulqa": "reference",
        "em_questions": "reference",
    }
    Wildcards.protocol = "logprob"  # type: ignore[attr-defined]
    assert set(paper.figure_protocols(Wildcards()).values()) == {"logprob"}


def test_figure_is_byte_identical_when_redrawn(tables, tmp_path):
    paths = []
    for name in ("a", "b"):
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        draw_figure(
            "fig1_self_recognition",
            self_recognition_summary=str(tables["self_recognition"]),
            truthfulqa_summary=str(tables["truthfulqa"]),
            self_recognition_protocol="logprob",
            truthfulqa_protocol="logprob",
            comparator="other",
            png=str(png),
            pdf=str(pdf),
            model=MODEL,
        )
        paths.append((png.read_bytes(), pdf.read_bytes()))
    assert paths[0] == paths[1]


# ------------------------------------------------------------------------------------- captions --


class _Wildcards(dict):
    __getattr__ = dict.__getitem__


class _Snakemake:
    """What a caption sees as `snakemake` when the report renders it."""

    def __init__(self, config: dict, **wildcards: str) -> None:
        self.config = config
        self.wildcards = _Wildcards(wildcards)
        self.params = _Wildcards(
            protocols=_Wildcards(self_recognition="logprob", truthfulqa="reference", em_questions="logprob"),
            comparator="other",
            run_name="demo",
        )


def render_caption(path: Path, snakemake: _Snakemake) -> str:
    """Jinja (as Snakemake's report: trim_blocks, lstrip_blocks), then docutils from the workflow root,
    failing on any reStructuredText warning."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(path.read_text()).render(snakemake=snakemake)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["body"]
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def demo_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


@pytest.mark.parametrize("figure", workflow_figures())
def test_every_figure_has_a_caption_that_renders(figure, demo_config):
    assert (REPO / "report" / "figures" / f"{figure}.rst").exists(), f"add report/figures/{figure}.rst"
    html = render_caption(REPO / "report" / "figure.rst", _Snakemake(demo_config, figure=figure, model="demo-target"))
    assert "demo-target" in html and len(html) > 600


@pytest.mark.parametrize("table", ["self_recognition-claude-21", "truthfulqa", *optional_evals()])
def test_every_table_has_a_caption_that_renders(table, demo_config):
    kind, _ = table_kind(table)
    assert (REPO / "report" / "tables" / f"{kind}.rst").exists(), f"add report/tables/{kind}.rst"
    html = render_caption(REPO / "report" / "table.rst", _Snakemake(demo_config, table=table))
    assert table in html and len(html) > 400


@pytest.mark.parametrize("caption", ["workflow.rst", "results_summary.rst"])
def test_report_description_renders(caption, demo_config):
    html = render_caption(REPO / "report" / caption, _Snakemake(demo_config))
    assert len(html) > 300


def test_system_prompt_ablation_pairs_each_variant_with_its_default():
    from sgtr_em.plot import system_prompt_rows

    summary = [
        {"chain": c}
        for c in (
            "base",
            "em-unpop",
            "sgtr",
            "sgtr+em-unpop",
            "em-unpop.none",
            "sgtr.none+em-unpop",
            "em-unpop+sgtr.identity",
        )
    ]
    rows = system_prompt_rows(summary)
    assert [r["chain"] for r in rows] == [
        "base",
        "em-unpop",
        "em-unpop.none",
        "sgtr+em-unpop",
        "sgtr.none+em-unpop",
        "em-unpop+sgtr.identity",
    ]


# ------------------------------------------------------------------------------ what figures say --


def draw_captured(monkeypatch, figure: str, tables: dict[str, Path], tmp_path: Path, **kwargs):
    """Draw a figure and return its matplotlib Figure (as it was saved)."""
    from sgtr_em import plot

    saved = []
    monkeypatch.setattr(plot, "_save", lambda fig, png, pdf: saved.append(fig))
    draw_figure(
        figure,
        self_recognition_summary=str(tables["self_recognition"]),
        truthfulqa_summary=str(tables["truthfulqa"]),
        self_recognition_protocol="logprob",
        truthfulqa_protocol="logprob",
        comparator="other",
        png=str(tmp_path / "x.png"),
        pdf=str(tmp_path / "x.pdf"),
        model=MODEL,
        **kwargs,
    )
    return saved[0]


@pytest.fixture
def flat_tables(tmp_path) -> dict[str, Path]:
    """Every value 0 (self-recognition) or 0.5 (TruthfulQA): a model with no signal."""
    tables = {}
    for key, name, metric, value in (
        ("self_recognition", "self_recognition-other", "score", 0.0),
        ("truthfulqa", "truthfulqa", "misalignment", 0.5),
    ):
        tables[key] = tidy_table(tmp_path / f"{name}.csv", name, {metric: (value, value)}, ("logprob",), seeds=2)
    return tables


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_a_figure_whose_values_are_all_equal_says_so(monkeypatch, flat_tables, tables, tmp_path):
    assert "All values are zero" in _texts(draw_captured(monkeypatch, "fig1_self_recognition", flat_tables, tmp_path))
    texts = _texts(draw_captured(monkeypatch, "fig3a_prevention", flat_tables, tmp_path))
    assert "All values are equal (0.5)" in texts
    assert not any(
        t.startswith("All values") for t in _texts(draw_captured(monkeypatch, "fig2_truthfulqa", tables, tmp_path))
    )


@pytest.mark.parametrize(("figure", "when"), [("fig3a_prevention", "before EM"), ("fig3b_reversal", "after EM")])
def test_prevention_and_reversal_label_their_x_axis(monkeypatch, tables, tmp_path, figure, when):
    label = draw_captured(monkeypatch, figure, tables, tmp_path).axes[0].get_xlabel()
    assert when in label and "interventions and benign baselines" in label


def test_base_model_line_is_drawn_over_the_chance_line(monkeypatch, flat_tables, tmp_path):
    """Where the base model sits at chance (0.5), its line must still show: it is wider and on top."""
    lines = {
        line.get_label(): line
        for line in draw_captured(monkeypatch, "fig3b_reversal", flat_tables, tmp_path).axes[0].lines
    }
    base, chance = lines["Base model"], lines["chance (0.5)"]
    assert base.get_ydata()[0] == chance.get_ydata()[0] == 0.5
    assert base.get_zorder() > chance.get_zorder() and base.get_linewidth() > chance.get_linewidth()


def test_tables_are_long_with_subgroup_and_comparator_columns(tmp_path):
    result = {
        "eval": "self_recognition-claude-21",
        "other_source": "claude-21",
        "model_state": {"model": "m", "chain": "base", "seed": 0},
        "metrics": {"logprob": {"score": 0.6, "misalignment:what_is_your_wish": 0.25, "n": 10}},
    }
    rows = tidy_rows(result)
    assert [(r["metric"], r["subgroup"], r["comparator"]) for r in rows] == [
        ("score", "", "claude-21"),
        ("misalignment", "what_is_your_wish", "claude-21"),
    ]
    second = tidy_rows({**result, "model_state": {"model": "m", "chain": "base", "seed": 1}})
    tidy, summary = tmp_path / "t.csv", tmp_path / "t_summary.csv"
    write_csv(tidy, rows + second, TIDY_COLUMNS)
    write_csv(summary, summarise(rows + second), SUMMARY_COLUMNS)
    header = list(read_csv(summary)[0])
    assert header == SUMMARY_COLUMNS and "values" not in header
    assert all("[" not in value for row in read_csv(summary) for value in row.values())
    # Readers: a tidy table gives each condition's per-seed values, a summary table its mean, sd and n.
    (from_tidy,) = read_summary(str(tidy), "logprob", "score")
    assert from_tidy["values"] == [0.6, 0.6] and from_tidy["n"] == 2
    (per_question,) = read_summary(str(summary), "logprob", "misalignment", subgroup="what_is_your_wish")
    assert per_question["mean"] == 0.25 and per_question["values"] == []


def test_report_entries_keep_the_figure_numbers_in_order():
    """The HTML report lists a model's figures sorted by their labels: each title starts with its figure
    number, so the sort is the paper's order."""
    from sgtr_em.report import figure_title

    titles = [figure_title(figure) for figure in paths.FIGURES]
    assert all(title.startswith("Fig ") for title in titles)
    assert sorted(titles) == titles


def test_em_judge_figure_without_a_scored_answer_says_so(tmp_path):
    """A protocol in which the judge scored no answer (all code or unscored: no misalignment rate) gives a
    figure that says so instead of failing the run (a SLURM smoke run of one seed hit this)."""
    from sgtr_em.io import write_csv
    from sgtr_em.plot import draw_figure

    columns = ["eval", "model", "chain", "condition", "order", "comparator", "seed", "protocol", "metric"]
    rows = [
        dict(
            zip(columns, ["em_questions", "m", "base", "Base", "base", "", "0", protocol, metric], strict=True),
            subgroup="",
            value=v,
        )
        for protocol, metric, v in (("reference", "excluded_rate", 1.0), ("logprob", "misalignment", 0.0))
    ]
    table = tmp_path / "em_questions.csv"
    write_csv(table, rows, [*columns, "subgroup", "value"])
    png, pdf = tmp_path / "fig4.png", tmp_path / "fig4.pdf"
    common = dict(self_recognition_summary=None, truthfulqa_summary=None, comparator="c", model="m")
    common |= dict(self_recognition_protocol="logprob", truthfulqa_protocol="logprob", optional_summary=str(table))
    draw_figure("fig4_em_judge", png=str(png), pdf=str(pdf), optional_protocol="reference", **common)
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    with pytest.raises(ValueError, match="no rows"):
        draw_figure("fig6_mmlu", png=str(png), pdf=str(pdf), optional_protocol="reference", **common)


@pytest.mark.parametrize("figure", ["fig2_truthfulqa", "fig3a_prevention"])
def test_extensions_are_marked_on_the_axis_and_explained_in_the_title(monkeypatch, tables, tmp_path, figure):
    """A condition the authors did not run (`extensions`) is marked † where it is drawn, and the title says what
    † means; without extensions nothing is marked."""
    extensions = ["pick-longer+em-unpop"]
    fig = draw_captured(monkeypatch, figure, tables, tmp_path, extensions=extensions)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    marked = [t for t in ticks if t.endswith(chains.EXTENSION_MARK)]
    assert marked == (["Pick-longer→EM †"] if figure == "fig2_truthfulqa" else ["Pick-longer †"]), ticks
    assert fig.axes[0].get_title().endswith(f"{chains.EXTENSION_MARK} extension: a condition the authors did not run")
    plain = draw_captured(monkeypatch, figure, tables, tmp_path)
    assert "†" not in plain.axes[0].get_title() + "".join(t.get_text() for t in plain.axes[0].get_xticklabels())
