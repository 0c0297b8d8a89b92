"""The benchmark script works end to end on a small slice (its figures are checked by people, not by tests)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "train_seconds", "train_epochs", "train_accuracy", "svc_fit_seconds", "svc_accuracy", "svc_batch_msgs_per_s",
    "single_ms_median", "single_ms_p99", "batch_msgs_per_s", "http_chat_rps", "http_chat_p50_ms", "http_chat_p99_ms",
    "http_trivial_rps", "http_errors", "server_rss_mb", "server_total_rss_mb", "server_workers", "cores",
    "load_average_before", "load_average_after", "python", "torch", "scikit_learn", "torch_threads",
}  # fmt: skip


def test_quick_benchmark_writes_every_figure(banking77, tmp_path):
    out, plot = tmp_path / "results.json", tmp_path / "scaling.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out), "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures) >= KEYS
    assert figures["http_errors"] == 0
    assert 50 < figures["train_accuracy"] <= 100 and 50 < figures["svc_accuracy"] <= 100
    assert [row["rows"] for row in figures["scaling"]] == sorted(row["rows"] for row in figures["scaling"])
    assert len(figures["scaling"]) == 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| `http_errors` |" in result.stdout
