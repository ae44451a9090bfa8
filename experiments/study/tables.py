"""Tables of results: every run's ``metrics.json`` (:func:`find_metrics`), number formats, Markdown tables."""

import math
import warnings
from pathlib import Path

from study.outputs import read_json
from study.settings import RESULTS

__all__ = ["find_metrics", "fmt_int", "fmt_percent", "fmt_seconds", "markdown_table"]


def find_metrics(results_dir=RESULTS, include_quick=False):
    """``{name: metrics}`` for every ``<results_dir>/<name>/metrics.json``, sorted by name.

    Quick runs are skipped unless ``include_quick``.
    """
    found = {}
    for path in sorted(Path(results_dir).glob("*/metrics.json")):
        try:
            metrics = read_json(path)
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping {path}: {error}", stacklevel=2)
            continue
        if metrics.get("quick") and not include_quick:
            continue
        found[path.parent.name] = metrics
    return found


def fmt_percent(value, digits=2):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def fmt_seconds(value):
    if value is None:
        return ""
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def fmt_int(value):
    return "" if value is None else f"{int(value):,}"


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
