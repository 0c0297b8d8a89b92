"""Replicas behind nginx on this machine: chat requests per second through a real nginx with one, two and three
`chatbot serve --store` replicas, and the time from `chatbot publish` to the last replica serving the new model.

    python benchmarks/replicas.py [--seconds 8] [--poll 4] [--publishes 6] [--out replicas.json]

Needs nginx and wrk (`apt-get install -y nginx wrk`). Trains the shipped intents.json twice (seeds 0 and 1) so that
there are two models to publish in turn. Prints a progress line per stage and a table; writes the figures to --out as
JSON and the curve to benchmarks/replicas.png. A benchmark, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import (  # noqa: E402
    find_wrk,
    free_port,
    machine_facts,
    parse_wrk,
    process_tree,
    process_tree_rss_mb,
    run_wrk,
    wrk_process,
)

from training.registry import publish  # noqa: E402

SECRET = "benchmark-replicas-share-this-secret-0123"
# The replicas' upstream as a plain host runs it (deploy/nginx/chatbot.conf) without its per-client rate limit,
# which would turn a load from one address into 429s: keep-alive from the client, a fresh connection to a replica.
NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream replicas {{
        {servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


def stage(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def train(intents: Path, model: Path, seed: int) -> None:
    command = [sys.executable, "-m", "chatbot", "train", "--intents", str(intents), "--model", str(model)]
    subprocess.run([*command, "--seed", str(seed)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def health_digest(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
            return json.load(response)["model"]["digest"]
    except (OSError, ValueError, KeyError):
        return None


def start_replica(store: Path, port: int, poll: float, log: Path) -> subprocess.Popen:
    """`chatbot serve --store` with its default workers and threads, as a replica runs in deploy/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    env |= {"CHATBOT_SECRET_KEY": SECRET, "CHATBOT_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "chatbot", "serve", "--store", str(store), "--poll", str(poll)]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
        )
    deadline = time.monotonic() + 90
    while health_digest(port) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the replica on port {port} did not start; see {log}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


class Nginx:
    """A real nginx in front of the given replica ports, in a folder of its own (no root needed)."""

    def __init__(self, nginx: str, work: Path, ports: list[int]) -> None:
        self.work = work
        self.port = free_port()
        work.mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in ports)
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, user=user, servers=servers, port=self.port), encoding="utf-8")
        subprocess.run([nginx, "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")], check=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = int((work / "nginx.pid").read_text())
        deadline = time.monotonic() + 10
        while health_digest(self.port) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer; see {work / 'error.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while (self.work / "nginx.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its descendants so far, from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime and stime: fields 14 and 15 of stat
    return total


def load(wrk: str, url: str, seconds: int, servers: list[int], nginx: int | None = None) -> dict:
    """wrk's figures, and the CPU seconds that the replicas and nginx spent per 1,000 answers."""
    run_wrk(wrk, url, 2)  # warm every worker behind it
    before = sum(cpu_seconds(pid) for pid in servers), cpu_seconds(nginx) if nginx else 0.0
    figures = run_wrk(wrk, url, seconds)
    after = sum(cpu_seconds(pid) for pid in servers), cpu_seconds(nginx) if nginx else 0.0
    per_thousand = 1000 / max(figures.get("requests", 0), 1)
    figures["replicas_cpu_s_per_1000"] = (after[0] - before[0]) * per_thousand
    figures["nginx_cpu_s_per_1000"] = (after[1] - before[1]) * per_thousand
    return figures


def time_publishes(
    wrk: str, url: str, models: list[Path], store: Path, ports: list[int], publishes: int, poll: float
) -> tuple[list[float], dict]:
    """Seconds from each publish (current.json replaced) to the last replica serving it, under load through nginx."""
    seconds = int(publishes * (2 * poll + 20)) + 30  # the load outlasts the publishes; it is stopped after them
    followed = []
    with wrk_process(wrk, f"{url}/api/chat", seconds) as background:
        try:
            for number in range(publishes):
                model = models[(number + 1) % len(models)]
                time.sleep(poll * (number % 3) / 3)  # publish at different points of the replicas' poll cycle
                digest = publish(model, store, by="benchmarks/replicas.py").manifest.digest
                started = time.monotonic()
                while any(health_digest(port) != digest for port in ports):
                    if time.monotonic() - started > 2 * poll + 60:
                        raise RuntimeError(f"the replicas did not follow publish {number + 1} within {2 * poll + 60} s")
                    time.sleep(0.05)
                followed.append(time.monotonic() - started)
                stage(
                    f"publish {number + 1}/{publishes}: every replica serves {digest[:12]} after {followed[-1]:.2f} s"
                )
        finally:
            background.send_signal(signal.SIGINT)  # wrk prints its figures when interrupted
            out, _ = background.communicate(timeout=30)
    return followed, parse_wrk(out)


SETUPS = ["no nginx", "1", "2", "3"]  # one replica straight, then 1, 2 and 3 replicas through nginx


def label(setup: str) -> str:
    return "1 replica, no nginx" if setup == "no nginx" else f"{setup} replica(s) via nginx"


def plot(results: dict, path: Path) -> Path:
    """Each round's requests per second (dots) and their median (line), against the number of replicas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    counts = [1, 2, 3]
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    for count in counts:
        ax.plot([count] * len(runs[str(count)]), [r["rps"] for r in runs[str(count)]], ".", color="tab:blue", alpha=0.4)
    medians = [statistics.median(r["rps"] for r in runs[str(count)]) for count in counts]
    ax.plot(counts, medians, "o-", color="tab:blue", label="through nginx (median, and each round)")
    direct = statistics.median(r["rps"] for r in runs["no nginx"])
    ax.axhline(direct, color="tab:gray", linestyle="--", label="one replica, no nginx (median)")
    ax.set_xticks(counts)
    ax.set_xlabel("replicas (2 workers each) on this 2-core machine")
    ax.set_ylabel("chat requests / s")
    ax.set_ylim(0, 1.15 * max(r["rps"] for rows in runs.values() for r in rows))
    ax.legend(loc="lower right")
    ax.set_title("Chat throughput against replicas, one machine")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setup, interleaved")
    parser.add_argument("--poll", type=float, default=4.0, help="the replicas' --poll")
    parser.add_argument("--publishes", type=int, default=6, help="publishes to time")
    parser.add_argument("--intents", type=Path, default=ROOT / "intents.json")
    parser.add_argument("--out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "replicas.png")
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    wrk = find_wrk()
    if nginx is None or wrk is None:
        parser.error("needs nginx and wrk: apt-get install -y nginx wrk")

    results: dict = {"machine": machine_facts() | {"load_before": os.getloadavg()[0]}, "poll": args.poll}
    replicas: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="replicas-bench-") as folder:
        work = Path(folder)
        models = [work / "seed0.pt", work / "seed1.pt"]
        stage(f"training {args.intents.name} twice (seeds 0 and 1)")
        for seed, model in enumerate(models):
            train(args.intents, model, seed)
        store = work / "store"
        publish(models[0], store, by="benchmarks/replicas.py")
        ports = [free_port() for _ in range(3)]
        try:
            for number, port in enumerate(ports):
                stage(f"starting replica {number + 1} on port {port}")
                replicas.append(start_replica(store, port, args.poll, work / f"replica{number + 1}.log"))

            runs: dict[str, list[dict]] = {setup: [] for setup in SETUPS}
            for number in range(args.rounds):  # rounds interleave the setups, so that a busy moment hits them all
                for setup in SETUPS:
                    stage(f"round {number + 1}/{args.rounds}: {label(setup)}, wrk {args.seconds} s")
                    if setup == "no nginx":
                        url, pid = f"http://127.0.0.1:{ports[0]}/api/chat", [replicas[0].pid]
                        runs[setup].append(load(wrk, url, args.seconds, pid))
                        continue
                    balancer = Nginx(nginx, work / f"nginx-{number}-{setup}", ports[: int(setup)])
                    try:
                        pids = [process.pid for process in replicas[: int(setup)]]
                        runs[setup].append(load(wrk, f"{balancer.url}/api/chat", args.seconds, pids, balancer.pid))
                    finally:
                        balancer.stop()
            results["runs"] = runs

            stage(f"{args.publishes} publishes, 3 replicas under load through nginx, --poll {args.poll}")
            balancer = Nginx(nginx, work / "nginx-publish", ports)
            try:
                followed, during = time_publishes(wrk, balancer.url, models, store, ports, args.publishes, args.poll)
            finally:
                balancer.stop()
            results["replica_rss_mb"] = [round(sum(process_tree_rss_mb(p.pid))) for p in replicas]  # all have served
            results["publish_to_all_seconds"] = followed
            results["load_during_publishes"] = during
        finally:
            for process in replicas:
                stop(process)
    results["load_after"] = os.getloadavg()[0]

    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.out}")
    print(f"plot written to {plot(results, args.plot)}")
    return 0


def print_table(results: dict) -> None:
    machine = results["machine"]
    print(f"\nchat requests/s, wrk -t2 -c8, {machine['cores']} cores, load average {machine['load_before']:.2f} before")
    print("median of the rounds (lowest-highest); CPU seconds per 1,000 answers spent by the replicas and by nginx")
    print(f"{'setup':<26} {'req/s':>19} {'p99 ms':>7} {'errors':>6} {'replicas':>9} {'nginx':>6}")
    for setup, rows in results["runs"].items():
        rps = [row["rps"] for row in rows]
        spread = f"{statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f})"

        def median(key: str, rows: list[dict] = rows) -> float:
            return statistics.median(row[key] for row in rows)

        print(
            f"{label(setup):<26} {spread:>19} {median('p99_ms'):>7.1f} {sum(row['errors'] for row in rows):>6}"
            f" {median('replicas_cpu_s_per_1000'):>9.2f} {median('nginx_cpu_s_per_1000'):>6.2f}"
        )
    followed = results["publish_to_all_seconds"]
    during = results["load_during_publishes"]
    print(
        f"\npublish -> every replica serving (--poll {results['poll']}): "
        + ", ".join(f"{s:.1f}" for s in followed)
        + f" s (median {statistics.median(followed):.1f}, max {max(followed):.1f})"
    )
    print(f"load through nginx meanwhile: {during.get('rps', 0):,.0f} req/s, {during['errors']} errors")
    print(f"memory per replica after the runs (master, follower, 2 workers): {results['replica_rss_mb']} MB")


if __name__ == "__main__":
    raise SystemExit(main())
