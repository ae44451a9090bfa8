"""make_results.py must not replace docs/results.md with a page of "not run" rows."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import common  # noqa: E402
import make_results  # noqa: E402


def test_without_output_it_refuses_to_replace_the_docs_page_when_runs_are_missing(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "results.md"
    page.write_text("the published tables\n")
    monkeypatch.setattr(common, "DOCS", docs)
    with pytest.raises(SystemExit, match=r"no full run of basic_mlp, optimized_mlp, deep_cnn.*left as it is"):
        make_results.main(["--results", str(tmp_path / "nothing")])
    assert page.read_text() == "the published tables\n"
    make_results.main(["--results", str(tmp_path / "nothing"), "--allow-missing"])      # asked for: replaced
    assert "Not run yet" in page.read_text()


def test_an_explicit_output_gets_whatever_was_found(tmp_path):
    out = tmp_path / "partial.md"
    text = make_results.main(["--results", str(tmp_path / "nothing"), "--output", str(out)])
    assert out.read_text() == text and "Not run yet" in text


def test_quick_runs_count_as_missing_for_the_docs_page():
    found = {name: {"quick": name == "deep_cnn"} for name in make_results.ORDER}
    assert make_results._missing(found, include_quick=False) == ["deep_cnn"]
    assert make_results._missing(found, include_quick=True) == []
