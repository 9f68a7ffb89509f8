"""The released results in the authors' formats that the release tests import (tests/fixtures/release/, written
for this project under the real release's names and layout), and the paper's figures drawn from them for a model
the release holds every condition of: shared by tests/unit/test_release.py, tests/workflow/test_release_rules.py and tests/e2e/test_release_figures.py."""

from __future__ import annotations

from conftest import REPO

FIXTURES = REPO / "tests/fixtures/release"
FIGURES = ("fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal")
