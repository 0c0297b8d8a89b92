"""Speed and accuracy of the chatbot on BANKING77, against a TF-IDF + LinearSVC reference, in one run.

    python benchmarks/run.py [--out results.json] [--quick] [--data ../shared/data/banking77]

Prints a progress line per stage and a table with the targets; writes every figure to --out as JSON and the scaling
plot to benchmarks/scaling.png. A benchmark, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "banking77"
TARGETS = [  # (label, key or ratio, comparison, target)
    ("train_seconds / svc_fit_seconds", "train_ratio", "<=", 8.0),
    ("train_accuracy - svc_accuracy", "accuracy_gain", ">=", 1.0),
    ("single_ms_median", "single_ms_median", "<=", 0.25),
    ("batch_msgs_per_s / svc_batch_msgs_per_s", "batch_ratio", ">=", 1.0),
    ("http_chat_rps / http_trivial_rps", "http_ratio", ">=", 0.5),
    ("http_chat_p99_ms", "http_chat_p99_ms", "<=", 20.0),
    ("http_errors", "http_errors", "<=", 0),
    ("server_rss_mb", "server_rss_mb", "<=", 300.0),
]
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"message": "I still have not received my new card, how long does it take?"}'
wrk.headers["Content-Type"] = "application/json"
"""


def stage(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def stratified_subset(texts, labels, fraction: float, seed: int = 0):
    if fraction >= 1.0:
        return texts, labels
    from sklearn.model_selection import train_test_split

    kept_texts, _, kept_labels, _ = train_test_split(
        texts, labels, train_size=fraction, stratify=labels, random_state=seed
    )
    return kept_texts, kept_labels


def write_intents(texts, labels, path: Path) -> Path:
    patterns: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        patterns.setdefault(label, []).append(text)
    doc = {"intents": [{"tag": t, "patterns": list(dict.fromkeys(p)), "responses": [t]} for t, p in patterns.items()]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def train_like_cli(intents_path: Path, model_path: Path) -> tuple[float, int]:
    """What `chatbot train` does with no flags: load and validate, train, save and load back. Returns (seconds,
    epochs run)."""
    from training.intents_reader import load_intents
    from training.train_file import train_file

    started = time.perf_counter()
    result = train_file(load_intents(intents_path), model_path, force=True).result
    seconds = time.perf_counter() - started
    runs = len(result.history.epochs) + (len(result.refit_history.epochs) if result.refit_history else 0)
    return seconds, runs


def accuracy_of(model_path: Path, texts, labels) -> float:
    from training.classifier import IntentClassifier

    predictions = IntentClassifier.from_checkpoint(model_path).predict_batch(texts)
    return 100.0 * sum(p.intent == label for p, label in zip(predictions, labels)) / len(labels)


def single_latency_ms(model_path: Path, texts) -> tuple[float, float]:
    from training.classifier import IntentClassifier

    classifier = IntentClassifier.from_checkpoint(model_path)
    for text in texts[:200]:
        classifier.predict(text)
    timings = []
    for text in texts:
        started = time.perf_counter()
        classifier.predict(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(0.99 * len(timings)))]


def batch_rate(model_path: Path, texts) -> float:
    from training.classifier import IntentClassifier

    classifier = IntentClassifier.from_checkpoint(model_path)
    classifier.predict_batch(texts)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        classifier.predict_batch(texts)
        times.append(time.perf_counter() - started)
    return len(texts) / statistics.median(times)


def context_turn_us(repeats: int = 2000) -> dict:
    """What carrying a conversation costs per turn, without the model: reading the client's token and making the
    next one (app.context_token), with an active context (signed) and without one (the id in clear). Best of 5."""
    from app.context_token import ContextTokens

    tokens = ContextTokens("benchmark-secret-0123456789-0123456789", max_age=1800)
    figures = {}
    for label, active in (("context_signed_turn_us", {"rentalday": 2}), ("context_plain_turn_us", {})):
        token = tokens.dumps(active, "0" * 64, "conversation-id")
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeats):
                received = tokens.loads(token)
                token = tokens.dumps(active, "0" * 64, received.conversation)
            best = min(best, (time.perf_counter() - started) / repeats * 1e6)
        figures[label] = best
    return figures


def svc_reference(train_texts, train_labels, test_texts, test_labels) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    fits = []
    for _ in range(3):
        started = time.perf_counter()
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\b\w+\b")
        model = LinearSVC(C=1.0).fit(vectorizer.fit_transform(train_texts), train_labels)
        fits.append(time.perf_counter() - started)
    predicted = model.predict(vectorizer.transform(test_texts))
    accuracy = 100.0 * sum(p == g for p, g in zip(predicted, test_labels)) / len(test_labels)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        model.predict(vectorizer.transform(test_texts))
        times.append(time.perf_counter() - started)
    return {
        "svc_fit_seconds": statistics.median(fits),
        "svc_accuracy": accuracy,
        "svc_batch_msgs_per_s": len(test_texts) / statistics.median(times),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        stage("wrk not found: installing Debian's wrk")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, timeout=300)
    return shutil.which("wrk")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants' pids, `pid` first (from /proc); processes that end meanwhile are left out."""
    pids, found = [pid], []
    while pids:
        current = pids.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found.append(current)
        pids.extend(int(c) for c in children)
    return found


def process_tree_rss_mb(pid: int) -> list[float]:
    """Resident memory of `pid` and its descendants, in MB, `pid` first (from /proc)."""
    found = []
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        found.append(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024)
    return found


@contextmanager
def wrk_process(wrk: str, url: str, seconds: int, connections: int = 8) -> Iterator[subprocess.Popen]:
    """wrk posting WRK_SCRIPT's chat message to `url`, its output piped; its script file is removed at the end."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
            yield process
    finally:
        os.unlink(script.name)


def run_wrk(wrk: str, url: str, seconds: int, connections: int = 8) -> dict:
    with wrk_process(wrk, url, seconds, connections) as process:
        out, _ = process.communicate(timeout=seconds + 60)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    def ms(value: str) -> float:
        units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        for unit in ("us", "ms", "s"):
            if value.endswith(unit):
                return float(value[: -len(unit)]) * units[unit]
        return float(value)

    figures = {"errors": 0, "requests": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith("50%"):
            figures["p50_ms"] = ms(parts[1])
        elif line.strip().startswith("99%"):
            figures["p99_ms"] = ms(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif "requests in" in line:
            figures["requests"] = int(parts[0])
        elif line.strip().startswith("Socket errors:"):
            figures["errors"] += sum(int(p.rstrip(",")) for p in parts[3::2])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            figures["errors"] += int(parts[-1])
    return figures


def python_load(url: str, seconds: float, connections: int = 8) -> dict:
    """Fallback client (keep-alive, threads): its own cost caps the figures, which the output says."""
    import http.client
    import threading
    from urllib.parse import urlparse

    target = urlparse(url)
    body = json.dumps({"message": "I still have not received my new card, how long does it take?"})
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                conn.request("POST", target.path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "errors": errors[0],
        "requests": len(latencies),
    }


@contextmanager
def serving(model_path: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """`chatbot serve` started exactly as a user does (default workers and threads): its base URL and pid."""
    port = free_port()
    env = dict(os.environ, CHATBOT_BENCH_ENDPOINT="1", CHATBOT_LOG_LEVEL="WARNING")
    command = [str(Path(sys.executable).parent / "chatbot"), "serve", "--model", str(model_path), "--port", str(port)]
    server = subprocess.Popen([*command, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("chatbot serve did not start") from None
                time.sleep(0.2)
        yield base, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def load_client(seconds: int) -> tuple[str, Callable[[str], dict]]:
    wrk = find_wrk()
    if wrk:
        return "wrk", lambda url: run_wrk(wrk, url, seconds)
    return "python threads (caps the figures)", lambda url: python_load(url, seconds)


def http_benchmark(model_path: Path, seconds: int) -> dict:
    """Chat and trivial requests per second, latency and memory of `chatbot serve`, loaded from 127.0.0.1."""
    client, load = load_client(seconds)
    with serving(model_path) as (base, pid):
        load(f"{base}/api/chat")  # warm every worker
        chat = load(f"{base}/api/chat")
        trivial = load(f"{base}/api/echo")
        rss = process_tree_rss_mb(pid)
    return {
        "http_client": client,
        "http_chat_rps": chat["rps"],
        "http_chat_p50_ms": chat["p50_ms"],
        "http_chat_p99_ms": chat["p99_ms"],
        "http_chat_requests": chat["requests"],
        "http_trivial_rps": trivial["rps"],
        "http_trivial_p99_ms": trivial["p99_ms"],
        "http_errors": chat["errors"] + trivial["errors"],
        "server_rss_mb": max(rss[1:] or rss),
        "server_total_rss_mb": sum(rss),
        "server_workers": max(len(rss) - 1, 1),
    }


def message_log_cost(model_path: Path, seconds: int, log: Path, pairs: int = 3) -> dict:
    """Chat requests per second without and with `--message-log`: two servers side by side, loaded in turn, so that
    the machine's drift from one minute to the next falls on both (a single run of each measured anything from -5 to
    +19 % on the same code). The cost is the median of the pairs' ratios."""
    _, load = load_client(seconds)
    with serving(model_path) as (plain, _), serving(model_path, "--message-log", str(log)) as (logged, _):
        for base in (plain, logged):
            load(f"{base}/api/chat")  # warm every worker
        runs = [(load(f"{plain}/api/chat"), load(f"{logged}/api/chat")) for _ in range(pairs)]
    return {
        "http_logged_chat_rps": statistics.median(with_log["rps"] for _, with_log in runs),
        "http_logged_chat_p99_ms": statistics.median(with_log["p99_ms"] for _, with_log in runs),
        "http_unlogged_chat_rps": statistics.median(without["rps"] for without, _ in runs),
        "http_logged_cost_pct": 100 * (1 - statistics.median(w["rps"] / wo["rps"] for wo, w in runs)),
        "http_logged_errors": sum(wo["errors"] + w["errors"] for wo, w in runs),
        "http_logged_pairs_rps": [[round(wo["rps"]), round(w["rps"])] for wo, w in runs],
    }


def plot_scaling(scaling: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [s["rows"] for s in scaling]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(rows, [s["train_seconds"] for s in scaling], "o-", color="tab:blue", label="training time (s)")
    ax.set_xlabel("rows of train.csv")
    ax.set_ylabel("training time (s)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(rows, [s["train_accuracy"] for s in scaling], "s--", color="tab:orange", label="test accuracy (%)")
    ax2.set_ylabel("test accuracy (%)")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right")
    ax.set_title("BANKING77: cost and accuracy against training data")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def machine_facts() -> dict:
    import sklearn
    import torch

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "scikit_learn": sklearn.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def derived(results: dict) -> dict:
    return {
        "train_ratio": results["train_seconds"] / results["svc_fit_seconds"],
        "accuracy_gain": results["train_accuracy"] - results["svc_accuracy"],
        "batch_ratio": results["batch_msgs_per_s"] / results["svc_batch_msgs_per_s"],
        "http_ratio": results["http_chat_rps"] / results["http_trivial_rps"],
        **{k: results[k] for k in ("single_ms_median", "http_chat_p99_ms", "http_errors", "server_rss_mb")},
    }


def print_table(results: dict) -> None:
    values = derived(results)
    print("\n| figure | value | target | met |\n|---|---|---|---|")
    for label, key, comparison, target in TARGETS:
        value = values[key]
        met = value <= target if comparison == "<=" else value >= target
        print(f"| `{label}` | {value:.3g} | {comparison} {target:g} | {'yes' if met else 'NO'} |")
    print("\n| measured | value |\n|---|---|")
    for key, value in results.items():
        if key != "scaling":
            print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    print("\n| rows | train_seconds | train_accuracy | single_ms_median |\n|---|---|---|---|")
    for row in results["scaling"]:
        print(
            f"| {row['rows']} | {row['train_seconds']:.2f} | {row['train_accuracy']:.2f} | "
            f"{row['single_ms_median']:.3f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--quick", action="store_true", help="a small slice, for checking that the script works")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "scaling.png", help="scaling plot")
    args = parser.parse_args(argv)

    results: dict = {"load_average_before": list(os.getloadavg()), "quick": args.quick}
    results |= machine_facts()
    train_texts, train_labels = read_csv(args.data / "train.csv")
    test_texts, test_labels = read_csv(args.data / "test.csv")
    if args.quick:
        train_texts, train_labels = stratified_subset(train_texts, train_labels, 0.2)
        test_texts, test_labels = test_texts[::6], test_labels[::6]
    http_seconds = 2 if args.quick else 8
    work = Path(tempfile.mkdtemp(prefix="chatbot-bench-"))
    try:
        stage(f"training with default settings on {len(train_texts)} patterns")
        model = work / "chatbot.pt"
        seconds, epochs = train_like_cli(write_intents(train_texts, train_labels, work / "train.json"), model)
        results |= {"train_seconds": seconds, "train_epochs": epochs}
        results["train_accuracy"] = accuracy_of(model, test_texts, test_labels)
        stage(f"trained in {seconds:.2f}s, {epochs} epochs, test accuracy {results['train_accuracy']:.2f}%")
        stage("TF-IDF + LinearSVC reference (fit: median of 3)")
        results |= svc_reference(train_texts, train_labels, test_texts, test_labels)
        stage(f"LinearSVC: {results['svc_accuracy']:.2f}% in {results['svc_fit_seconds']:.2f}s")
        stage("single-message latency")
        results["single_ms_median"], results["single_ms_p99"] = single_latency_ms(model, test_texts)
        stage("batch throughput")
        results["batch_msgs_per_s"] = batch_rate(model, test_texts)
        stage("context tokens: a turn's token read and made again")
        results |= context_turn_us()
        stage(f"HTTP: chatbot serve under load, {http_seconds}s per endpoint, 8 connections")
        results |= http_benchmark(model, http_seconds)
        stage(f"HTTP: without and with --message-log, side by side, 3 pairs of {http_seconds // 2}s")
        results |= message_log_cost(model, max(http_seconds // 2, 1), work / "messages.log")
        scaling = []
        for fraction in (0.25, 0.5, 1.0):
            texts, labels = stratified_subset(train_texts, train_labels, fraction)
            stage(f"scaling: {fraction:.0%} of the training rows ({len(texts)} patterns)")
            if fraction == 1.0:
                row_seconds, row_model = results["train_seconds"], model
            else:
                row_model = work / f"scaling-{fraction}.pt"
                row_seconds, _ = train_like_cli(write_intents(texts, labels, work / "part.json"), row_model)
            scaling.append(
                {
                    "rows": len(texts),  # rows of train.csv; loading keeps repeats (case and spacing aside) once
                    "train_seconds": row_seconds,
                    "train_accuracy": accuracy_of(row_model, test_texts, test_labels),
                    "single_ms_median": single_latency_ms(row_model, test_texts[:1000])[0],
                }
            )
        results["scaling"] = scaling
        results["scaling_plot"] = str(plot_scaling(scaling, args.plot))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_after"] = list(os.getloadavg())
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        stage(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
