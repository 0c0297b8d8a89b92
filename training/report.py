"""An evaluation report folder: report.json, errors.csv, the confusion picture and the confidence histogram."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from training.errors import UserError
from training.evaluation import is_out_of_scope
from training.report_plots import plot_confidence_histogram, plot_confusion


class ReportError(UserError):
    """The report folder cannot be written."""


def write_report(
    folder: Path,
    report: dict[str, Any],
    errors: list[dict[str, Any]],
    gold: list[str],
    predicted: list[str],
    confidence: list[float],
) -> list[Path]:
    """Write the report's four files into `folder` (created if needed) and return their paths."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        report_path = folder / "report.json"
        report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        errors_path = folder / "errors.csv"
        with errors_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "gold", "predicted", "confidence", "fallback"])
            writer.writeheader()
            writer.writerows({**row, "confidence": f"{row['confidence']:.6f}"} for row in errors)
        inside = [i for i, g in enumerate(gold) if not is_out_of_scope(g)]
        outside = [confidence[i] for i, g in enumerate(gold) if is_out_of_scope(g)]
        confusion = plot_confusion(
            [gold[i] for i in inside], [predicted[i] for i in inside], folder / "confusion_matrix.png"
        )
        histogram = plot_confidence_histogram(
            [confidence[i] for i in inside],
            [gold[i] == predicted[i] for i in inside],
            report["threshold"],
            folder / "confidence_histogram.png",
            outside,
        )
    except OSError as exc:
        raise ReportError(f"cannot write the report to {folder}: {exc.strerror or exc}") from None
    return [report_path, confusion, histogram, errors_path]
