"""The names of evaluations and of the steps of a state's evaluation job, and their grammar: no imports from
the rest of the package, so every layer can use them.

An evaluation's name is its config key under `eval`; self-recognition is one evaluation per comparator,
`self_recognition-<comparator>`. A state job's step is an evaluation's name, or `summaries-<dataset>` for the
state's summaries of an article set."""

from __future__ import annotations

SELF_RECOGNITION = "self_recognition"
SUMMARIES_STEP_PREFIX = "summaries-"


def self_recognition_table(other: str) -> str:
    """Name of the self-recognition evaluation (and table) against one comparator."""
    return f"{SELF_RECOGNITION}-{other}"


def table_kind(table: str) -> tuple[str, str | None]:
    """(`self_recognition`, comparator) for a self-recognition table, else (table name, None)."""
    prefix = f"{SELF_RECOGNITION}-"
    if table.startswith(prefix):
        return SELF_RECOGNITION, table[len(prefix) :]
    return table, None


def summaries_step(dataset: str) -> str:
    """Name of the state-job step that writes a state's summaries of an article dataset."""
    return f"{SUMMARIES_STEP_PREFIX}{dataset}"


def summaries_dataset(step: str) -> str | None:
    """The article dataset a summaries step writes (None for an evaluation)."""
    return step.removeprefix(SUMMARIES_STEP_PREFIX) if step.startswith(SUMMARIES_STEP_PREFIX) else None
