"""experiments/common.py is the facade of the package experiments/study/: every name the modules export is there."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import common  # noqa: E402

MODULES = ["settings", "cli", "seeding", "data", "training", "evaluation", "records", "outputs", "run",
           "parallel", "tables"]


@pytest.mark.parametrize("name", MODULES)
def test_every_name_of_a_study_module_is_reachable_through_common(name):
    module = importlib.import_module(f"study.{name}")
    for exported in module.__all__:
        assert getattr(common, exported) is getattr(module, exported), f"common.{exported} is not study.{name}'s"
        assert exported in common.__all__


def test_common_exports_nothing_else():
    from_modules = {exported for name in MODULES for exported in importlib.import_module(f"study.{name}").__all__}
    assert set(common.__all__) == from_modules
