"""The dead-code check of `make lint` (tools/dead_code.py) on a small made-up checkout: what it reports and what
it counts as used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import REPO

spec = importlib.util.spec_from_file_location("dead_code", REPO / "tools/dead_code.py")
assert spec is not None and spec.loader is not None
dead_code = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dead_code)

PACKAGE = """
def called_by_a_rule():
    return 1


def called_by_a_script():
    return 2


def called_by_nothing():
    return 3


def called_by_a_test_only():
    return 4


def ends_early():
    return 5
    print("never")


class Callback:
    def on_save(self):  # a framework hook
        return 6
"""
RULES = """
rule one:
    output:
        "out.txt",
    params:
        n=T.called_by_a_rule,
    # called_by_nothing: a comment names it, which is no use
    shell:
        "echo called_by_nothing > {output}"
"""


def checkout(root: Path) -> Path:
    for folder in ("sgtr_em", "scripts", "tools", "tests", "rules"):
        (root / folder).mkdir(parents=True)
    (root / "sgtr_em/mod.py").write_text(PACKAGE)
    (root / "scripts/job.py").write_text(
        "from sgtr_em.mod import Callback, called_by_a_script, ends_early\n\n"
        "print(called_by_a_script(), ends_early(), Callback())\n"
    )
    (root / "tests/unit").mkdir()  # tests live in the folder of their tier
    (root / "tests/unit/test_mod.py").write_text(
        "from sgtr_em.mod import called_by_a_test_only\n\n\ndef test_it():\n    assert called_by_a_test_only() == 4\n"
    )
    (root / "rules/one.smk").write_text(RULES)
    (root / "Snakefile").write_text('include: "rules/one.smk"\n')
    return root


def test_the_check_reports_dead_and_test_only_code_and_sees_the_rules_uses(tmp_path):
    found = dead_code.findings(checkout(tmp_path))
    assert [line for line in found if line.startswith("sgtr_em/")] == [
        "sgtr_em/mod.py:10: unused function 'called_by_nothing' (60% confidence): unused",
        "sgtr_em/mod.py:20: unreachable code after 'return' (100% confidence): unused",
        "sgtr_em/mod.py:14: unused function 'called_by_a_test_only' (60% confidence): used only by the tests "
        "(move it there)",
    ]
    # a listed framework name that this checkout does not define is reported, so that the list cannot go stale
    listed = [line for line in found if "is listed but defined nowhere" in line]
    assert not any("'on_save'" in line for line in listed)
    assert any("'do_GET'" in line for line in listed)


def test_this_checkout_has_no_dead_code():
    assert dead_code.findings() == []
