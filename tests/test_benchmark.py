"""The benchmark scripts work end to end on a small slice (their figures are checked by people, not by tests)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from intents_files import TINY, write

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "train_seconds", "train_epochs", "train_accuracy", "svc_fit_seconds", "svc_accuracy", "svc_batch_msgs_per_s",
    "single_ms_median", "single_ms_p99", "batch_msgs_per_s", "http_chat_rps", "http_chat_p50_ms", "http_chat_p99_ms",
    "http_trivial_rps", "http_errors", "server_rss_mb", "server_total_rss_mb", "server_workers", "cores",
    "load_average_before", "load_average_after", "python", "torch", "scikit_learn", "torch_threads",
    "context_signed_turn_us", "context_plain_turn_us", "http_logged_chat_rps", "http_logged_cost_pct",
    "http_unlogged_chat_rps", "http_logged_errors",
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
    assert figures["http_errors"] == 0 and figures["http_logged_errors"] == 0
    assert 50 < figures["train_accuracy"] <= 100 and 50 < figures["svc_accuracy"] <= 100
    assert [row["rows"] for row in figures["scaling"]] == sorted(row["rows"] for row in figures["scaling"])
    assert len(figures["scaling"]) == 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| `http_errors` |" in result.stdout


@pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) or not shutil.which("wrk"),
                    reason="needs nginx and wrk (apt-get install -y nginx wrk)")  # fmt: skip
def test_replica_benchmark_measures_every_setup_and_times_a_publish(tmp_path):
    intents = write(tmp_path, TINY)
    out, plot = tmp_path / "replicas.json", tmp_path / "replicas.png"
    command = [sys.executable, str(ROOT / "benchmarks" / "replicas.py"), "--intents", str(intents), "--rounds", "1"]
    command += ["--seconds", "1", "--publishes", "2", "--poll", "1", "--out", str(out), "--plot", str(plot)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    figures = json.loads(out.read_text())
    assert list(figures["runs"]) == ["no nginx", "1", "2", "3"]
    for (run,) in figures["runs"].values():
        assert run["rps"] > 0 and run["errors"] == 0 and run["replicas_cpu_s_per_1000"] > 0
    assert figures["runs"]["3"][0]["nginx_cpu_s_per_1000"] > 0 == figures["runs"]["no nginx"][0]["nginx_cpu_s_per_1000"]
    assert len(figures["publish_to_all_seconds"]) == 2 and figures["load_during_publishes"]["errors"] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3 replica(s) via nginx" in result.stdout and "publish -> every replica serving" in result.stdout
