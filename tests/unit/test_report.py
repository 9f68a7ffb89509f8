"""The results summary: our numbers per condition, the paper's published numbers beside them, — where
either is missing (the HTML report of a finished demo: tests/e2e/test_report_demo.py)."""

from __future__ import annotations

import pytest

from sgtr_em import chains
from sgtr_em.aggregate import SUMMARY_COLUMNS, summarise
from sgtr_em.io import write_csv
from sgtr_em.published import load_published, published_for
from sgtr_em.report import (
    DASH,
    format_cell,
    model_table,
    results_summary,
    results_summary_html,
    write_results_summary,
)

PROTOCOLS = {"self_recognition": "logprob", "truthfulqa": "logprob"}


def write_summary(path, eval_name, model, values, *, metric, protocols=("logprob", "reference")):
    """values: chain -> per-seed values (the reference protocol gets each value + 0.01)."""
    rows = [
        {
            "eval": eval_name,
            "model": model,
            "chain": chain,
            "condition": chains.label(chain),
            "order": chains.order(chain),
            "seed": seed,
            "protocol": protocol,
            "metric": metric,
            "value": value + (0.01 if protocol == "reference" else 0.0),
        }
        for chain, seeds in values.items()
        for seed, value in enumerate(seeds)
        for protocol in protocols
    ]
    write_csv(path, summarise(rows), [*SUMMARY_COLUMNS, "values"])
    return path


@pytest.fixture
def qwen_tables(tmp_path):
    model = "qwen2.5-32b"
    return {
        "self_recognition-claude-21": write_summary(
            tmp_path / "sr.csv",
            "self_recognition-claude-21",
            model,
            {"base": [0.55, 0.57], "em-unpop": [0.5, 0.48], "sgtr": [0.8, 0.9]},
            metric="score",
        ),
        "truthfulqa": write_summary(
            tmp_path / "tqa.csv",
            "truthfulqa",
            model,
            {"base": [0.15, 0.15], "em-unpop": [0.22, 0.24], "sgtr": [0.13, 0.14], "sgtr-flip+em-unpop": [0.3, 0.32]},
            metric="misalignment",
        ),
        "em_questions": write_summary(
            tmp_path / "em.csv",
            "em_questions",
            model,
            {"base": [0.0], "em-unpop": [0.2]},
            metric="misalignment",
            protocols=("logprob",),
        ),
    }


def cells(header, rows, chain):
    row = next(r for r in rows if r[1] == f"`{chain}`")
    return dict(zip(header, row, strict=True))


def test_format_cell():
    assert format_cell(0.2261, 0.0162, 5) == "0.226 ± 0.016 (n=5)"
    assert format_cell(0.5, float("nan"), 1) == "0.500 (n=1)"
    assert format_cell(0.148) == "0.148"
    assert format_cell(None) == DASH and format_cell(float("nan")) == DASH


def test_published_numbers_file_has_the_paper_values():
    published = load_published()
    assert "methodology" in published["source"]
    qwen = published["models"]["qwen2.5-32b"]["evals"]
    assert qwen["truthfulqa"]["values"]["em-unpop"] == {"mean": 0.226, "sd": 0.016, "n": 5}
    assert qwen["truthfulqa"]["values"]["em-unpop.none"]["mean"] == 0.176
    assert (
        qwen["self_recognition"]["values"]["sgtr-flip"]["mean"] == 0.193
        and qwen["self_recognition"]["comparator"] == "claude-21"
    )
    gpt = published["models"]["gpt-4.1"]["evals"]
    assert (
        gpt["truthfulqa"]["values"]["em-unpop+sgtr-flip"]["mean"] == 0.776
        and gpt["self_recognition"]["values"]["sgtr"]["mean"] == 0.992
    )
    for entry in published["models"].values():
        for kind in entry["evals"].values():
            for chain in kind["values"]:
                chains.parse_chain(chain)  # every key is a valid chain


def test_published_numbers_match_by_name_or_model_id():
    published = load_published()
    assert published_for(published, "qwen2.5-32b") is published["models"]["qwen2.5-32b"]
    assert published_for(published, "my-gpt", "gpt-4.1-2025-04-14") is published["models"]["gpt-4.1"]
    assert published_for(published, "demo-target", "demo-target") is None
    assert published_for(None, "qwen2.5-32b") is None


def test_published_numbers_sit_beside_ours_and_missing_cells_are_dashes(qwen_tables):
    from sgtr_em.io import read_csv

    loaded = {name: read_csv(path) for name, path in qwen_tables.items()}
    published = load_published()
    header, rows, _ = model_table("qwen2.5-32b", loaded, PROTOCOLS, published_for(published, "qwen2.5-32b"))
    # every column names its protocol; the authors' protocol first, the paper's number beside it, then logprob
    assert header == [
        "Condition", "Chain",
        "Self-recognition vs claude-21 (authors' protocol)", "Self-recognition vs claude-21: paper (authors' protocol)", "Self-recognition vs claude-21 (logprob protocol)",
        "TruthfulQA misalignment (authors' protocol)", "TruthfulQA misalignment: paper (authors' protocol)", "TruthfulQA misalignment (logprob protocol)",
        "EM-judge misalignment (logprob protocol)",
    ]  # fmt: skip
    em = cells(header, rows, "em-unpop")
    assert em["Condition"] == "EM"
    assert em["TruthfulQA misalignment (logprob protocol)"] == "0.230 ± 0.014 (n=2)"
    assert em["TruthfulQA misalignment (authors' protocol)"] == "0.240 ± 0.014 (n=2)"
    assert em["TruthfulQA misalignment: paper (authors' protocol)"] == "0.226 ± 0.016 (n=5)"
    assert em["Self-recognition vs claude-21: paper (authors' protocol)"] == "0.490 ± 0.029 (n=5)"
    assert em["EM-judge misalignment (logprob protocol)"] == "0.200 (n=1)"
    assert cells(header, rows, "base")["TruthfulQA misalignment: paper (authors' protocol)"] == "0.148"
    # ours only: the paper has no number for this condition
    flip_em = cells(header, rows, "sgtr-flip+em-unpop")
    assert flip_em["TruthfulQA misalignment: paper (authors' protocol)"] == DASH
    assert flip_em["Self-recognition vs claude-21 (logprob protocol)"] == DASH
    # the paper's only: we did not run it
    none = cells(header, rows, "em-unpop.none")
    assert (
        none["Condition"] == "EM[none]"
        and none["TruthfulQA misalignment: paper (authors' protocol)"] == "0.176 ± 0.009 (n=5)"
    )
    assert none["TruthfulQA misalignment (authors' protocol)"] == DASH
    assert none["EM-judge misalignment (logprob protocol)"] == DASH
    # our conditions first, in grid order, then the paper's others
    chains_in_order = [r[1].strip("`") for r in rows]
    assert chains_in_order[:4] == ["base", "em-unpop", "sgtr", "sgtr-flip+em-unpop"]
    assert {"em-unpop.none", "sgtr-flip", "em-unpop+sgtr-confuse"} <= set(chains_in_order[4:])


def test_published_self_recognition_needs_the_same_comparator(tmp_path):
    from sgtr_em.io import read_csv

    table = write_summary(tmp_path / "sr.csv", "self_recognition-human", "qwen2.5-32b", {"base": [0.6]}, metric="score")
    header, _, _ = model_table(
        "qwen2.5-32b",
        {"self_recognition-human": read_csv(table)},
        PROTOCOLS,
        published_for(load_published(), "qwen2.5-32b"),
    )
    assert header == [
        "Condition",
        "Chain",
        "Self-recognition vs human (authors' protocol)",
        "Self-recognition vs human (logprob protocol)",
    ]


def test_summary_markdown_and_html(qwen_tables, tmp_path):
    demo = write_summary(
        tmp_path / "demo_tqa.csv", "truthfulqa", "demo-target", {"base": [0.5, 0.5]}, metric="misalignment"
    )
    tables = {**qwen_tables, "truthfulqa": tmp_path / "both.csv"}
    # one truthfulqa table holding both models, as the workflow writes it
    both = qwen_tables["truthfulqa"].read_text() + "".join(demo.read_text().splitlines(keepends=True)[1:])
    tables["truthfulqa"].write_text(both)
    kwargs = dict(
        tables=tables,
        models=["qwen2.5-32b", "demo-target"],
        model_ids={"qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct", "demo-target": "demo-target"},
        protocols=PROTOCOLS,
        published=load_published(),
        run_name="test",
    )
    text = results_summary(**kwargs)
    assert text.startswith("# Results summary: test\n")
    assert "## qwen2.5-32b (`Qwen/Qwen2.5-32B-Instruct`)" in text and "## demo-target\n" in text
    assert "| EM | `em-unpop` |" in text and "0.226 ± 0.016 (n=5)" in text
    assert "No published numbers for this model" in text
    demo_part = text.split("## demo-target")[1]
    assert (
        ": paper" not in demo_part
        and "| Base | `base` | — | 0.510 ± 0.000 (n=2) | 0.500 ± 0.000 (n=2) | —" in demo_part
    )
    # what each protocol is, under the table
    assert "TruthfulQA misalignment (logprob protocol): next-token probabilities over both orders" in text
    html = results_summary_html(**kwargs)
    assert "<table>" in html and "0.226 ± 0.016 (n=5)" in html and "<code>em-unpop</code>" in html
    out = tmp_path / "out" / "summary.md"
    assert write_results_summary(out, tmp_path / "out" / "summary.html", **kwargs) == out.read_text() == text
    assert (tmp_path / "out" / "summary.html").read_text() == html


def test_nan_sd_written_by_summarise_reads_back_as_a_single_seed(tmp_path):
    table = write_summary(
        tmp_path / "t.csv", "truthfulqa", "gpt-4.1", {"base": [0.1]}, metric="misalignment", protocols=("logprob",)
    )
    text = results_summary({"truthfulqa": table}, models=["gpt-4.1"], protocols=PROTOCOLS, published=load_published())
    assert "| Base | `base` | 0.100 (n=1) | 0.115 (n=1) |" in text  # only logprob: the paper's number after it


def test_extensions_are_marked_and_the_em_judge_shows_both_rules(tmp_path, qwen_tables):
    """A condition the authors did not run is marked † (with the note saying what that means), and the EM judge
    has a column per rule: the authors' (headline) and Betley et al.'s (coherent answers only)."""
    from sgtr_em.io import read_csv
    from sgtr_em.report import EXTENSION_NOTE, build_summary

    model = "qwen2.5-32b"
    em_rows = read_csv(qwen_tables["em_questions"])
    write_summary(
        tmp_path / "em_coherent.csv",
        "em_questions",
        model,
        {"base": [0.0], "em-unpop": [0.4]},
        metric="misalignment_coherent",
        protocols=("logprob",),
    )
    both = {**qwen_tables, "em_questions": tmp_path / "em_both.csv"}
    write_csv(both["em_questions"], [*em_rows, *read_csv(tmp_path / "em_coherent.csv")], [*SUMMARY_COLUMNS, "values"])
    (section,) = build_summary(both, models=[model], protocols=PROTOCOLS, extensions={model: ["sgtr-flip+em-unpop"]})
    header, rows = section.header, section.rows
    assert header[-2:] == [
        "EM-judge misalignment (logprob protocol)",
        "EM-judge misalignment, coherent answers only (logprob protocol)",
    ]
    em = cells(header, rows, "em-unpop")
    assert em["EM-judge misalignment (logprob protocol)"] == "0.200 (n=1)"
    assert em["EM-judge misalignment, coherent answers only (logprob protocol)"] == "0.400 (n=1)"
    assert cells(header, rows, "sgtr-flip+em-unpop")["Condition"] == "Self--→EM †"
    assert cells(header, rows, "em-unpop")["Condition"] == "EM"
    assert section.notes[0] == EXTENSION_NOTE and any("Betley" in note for note in section.notes)
    (unmarked,) = build_summary(both, models=[model], protocols=PROTOCOLS)
    assert EXTENSION_NOTE not in unmarked.notes and not any(r[0].endswith("†") for r in unmarked.rows)
