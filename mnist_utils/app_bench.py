"""`make bench-app`: how fast the web page's API answers, measured through HTTP as a browser meets it.

    python -m mnist_utils.app_bench                 # 300 predictions one at a time, then 20 clients for 10 s
    python -m mnist_utils.app_bench --quick         # tiny sizes: checks that everything runs; its numbers mean nothing

The server runs as `make app` runs it (``python -m mnist_utils.app``, its own process) on a free local port,
over the default model of reports/models (or --models DIR). Every request posts the same picture: an MNIST
test digit (a 7) drawn 280×280 pixels, dark on white, as the page's canvas sends it.

1. Latency: one client, one request at a time: the 50th and 95th percentiles of the time from sending the
   picture to having the whole answer (goal on 2 CPU cores: p50 ≤ 20 ms, p95 ≤ 50 ms).
2. Load: 20 clients at once, each posting as soon as its last answer came, for 10 seconds: requests answered,
   errors (any answer but a 200 reading 7, or a failed connection; goal: none), answers per second, and the
   latency percentiles under that load.

The figures are printed and written to reports/bench_app.json (see --json; a --quick run's, which mean nothing,
to reports/smoke/bench_app.json).
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from PIL import Image, ImageOps

from .bench import GOAL_CPU_CORES, machine_facts
from .checkpoints import default_checkpoint, list_checkpoints, make_command, models_dir
from .commands import CommandParser, checked_settings, figures_path, run_command, user_path
from .config import PROJECT_ROOT, usable_cpus
from .data import load_mnist
from .files import write_atomic
from .report import mark

GOALS_MS = {"p50": 20.0, "p95": 50.0}  # one request at a time
DIGIT_INDEX = 0  # MNIST test digit 0 is a 7


@dataclass(frozen=True)
class Sizes:
    requests: int = 300  # sequential, timed
    warmup: int = 30  # sequential, untimed (the first loads the model)
    clients: int = 20
    seconds: float = 10.0


QUICK = Sizes(requests=20, warmup=3, clients=3, seconds=1.0)


def canvas_picture() -> bytes:
    """MNIST test digit DIGIT_INDEX drawn as the page's canvas sends it: 280×280, dark ink on white, PNG."""
    digit = load_mnist().test.images[DIGIT_INDEX].numpy()
    drawing = ImageOps.invert(Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC))
    buffer = io.BytesIO()
    drawing.save(buffer, format="PNG")
    return buffer.getvalue()


def percentile(values: list[float], share: float) -> float:
    """The `share` (0-1) percentile of `values`, by linear interpolation between the nearest ranks."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(milliseconds: list[float]) -> dict[str, float]:
    return {"p50": percentile(milliseconds, 0.50), "p95": percentile(milliseconds, 0.95),
            "mean": statistics.fmean(milliseconds), "max": max(milliseconds)}


class Client:
    """One keep-alive HTTP connection, as a browser tab holds one."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def predict(self, picture: bytes) -> tuple[float, dict[str, Any] | None]:
        """(milliseconds, the answer's JSON, or None for anything but a 200)."""
        start = time.perf_counter()
        self.connection.request("POST", "/api/predict", body=picture, headers={"Content-Type": "image/png"})
        response = self.connection.getresponse()
        body = response.read()
        elapsed = 1000 * (time.perf_counter() - start)
        return elapsed, json.loads(body) if response.status == 200 else None

    def close(self) -> None:
        self.connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(directory: Path, port: int, timeout: float = 120.0) -> subprocess.Popen:
    """`python -m mnist_utils.app` on `port`, returned once it answers."""
    server = subprocess.Popen([sys.executable, "-m", "mnist_utils.app", "--host", "127.0.0.1", "--port", str(port),
                               "--models", str(directory)], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server stopped with status {server.returncode}; run "
                               f"`python -m mnist_utils.app --models {directory}` to see why")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/models")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def sequential(port: int, picture: bytes, sizes: Sizes) -> dict[str, Any]:
    """One request at a time, after an untimed warm-up."""
    client = Client(port)
    try:
        for _ in range(sizes.warmup):
            client.predict(picture)
        timings, wrong = [], 0
        for _ in range(sizes.requests):
            elapsed, answer = client.predict(picture)
            timings.append(elapsed)
            wrong += answer is None or answer["digit"] != 7
    finally:
        client.close()
    return {"requests": sizes.requests, "errors": wrong, "milliseconds": latency_summary(timings)}


def concurrent(port: int, picture: bytes, sizes: Sizes) -> dict[str, Any]:
    """`sizes.clients` clients posting back to back for `sizes.seconds` seconds."""
    timings: list[list[float]] = [[] for _ in range(sizes.clients)]
    errors: list[list[str]] = [[] for _ in range(sizes.clients)]
    start_line = threading.Barrier(sizes.clients + 1)
    deadline = [0.0]

    def run(index: int) -> None:
        client = Client(port)
        start_line.wait()
        try:
            while time.perf_counter() < deadline[0]:
                try:
                    elapsed, answer = client.predict(picture)
                except (OSError, http.client.HTTPException) as error:
                    errors[index].append(f"{type(error).__name__}: {error}")
                    client.close()
                    client = Client(port)
                    continue
                timings[index].append(elapsed)
                if answer is None or answer["digit"] != 7:
                    errors[index].append("not a 200 answer reading 7")
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sizes.clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + sizes.seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    every = [t for client in timings for t in client]
    failures = [e for client in errors for e in client]
    return {"clients": sizes.clients, "seconds": wall, "requests": len(every), "errors": len(failures),
            "error_examples": sorted(set(failures))[:5], "answers_per_second": len(every) / wall,
            "milliseconds": latency_summary(every) if every else None}


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = CommandParser(prog="python -m mnist_utils.app_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=user_path, help="folder of checkpoints (default: reports/models)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--json", type=user_path, help="where the figures go (default: reports/bench_app.json; with "
                                                  "--quick, reports/smoke/bench_app.json)")
    return parser.parse_args(argv)


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    checked_settings()  # the profile, whose models it serves and whose folder takes the figures
    path = figures_path(args.json, "bench_app.json", whole=not args.quick)
    directory = args.models or models_dir()
    chosen = default_checkpoint(list_checkpoints(directory))
    if chosen is None:
        print(f"error: no saved model in {directory}: run {make_command('app')} once (it trains one), or pass "
              "--models DIR.", file=sys.stderr)
        return 2
    picture = canvas_picture()
    port = free_port()
    print(f"Serving {chosen['title']} ({chosen['model']['name']}) from {directory} on port {port}; "
          f"{usable_cpus()} usable CPU cores")
    server = start_server(directory, port)
    try:
        one = sequential(port, picture, sizes)
        latency = one["milliseconds"]
        print(f"one client, {one['requests']} requests one at a time: p50 {latency['p50']:.1f} ms "
              f"(goal ≤ {GOALS_MS['p50']:.0f}), p95 {latency['p95']:.1f} ms (goal ≤ {GOALS_MS['p95']:.0f}), "
              f"mean {latency['mean']:.1f} ms, {one['errors']} errors")
        many = concurrent(port, picture, sizes)
        latency = many["milliseconds"] or {"p50": float("nan"), "p95": float("nan")}
        print(f"{many['clients']} clients at once for {many['seconds']:.1f} s: {many['requests']:,} answers, "
              f"{many['errors']} errors, {many['answers_per_second']:.0f} answers/s, p50 {latency['p50']:.1f} ms, "
              f"p95 {latency['p95']:.1f} ms")
    finally:
        server.terminate()
        server.wait(30)

    met = {"p50": one["milliseconds"]["p50"] <= GOALS_MS["p50"], "p95": one["milliseconds"]["p95"] <= GOALS_MS["p95"],
           "no_errors": one["errors"] == 0 and many["errors"] == 0 and many["requests"] > 0}
    facts = machine_facts(torch.device("cpu"))
    results = {"quick": args.quick, "sizes": sizes.__dict__, "checkpoint": chosen["path"], "sequential": one,
               "concurrent": many, "goals_ms": GOALS_MS, "goal_cpu_cores": GOAL_CPU_CORES, "met": met,
               "machine": facts}
    write_atomic(path, json.dumps(results, indent=2).encode())
    cores = "" if facts["usable_cpus"] == GOAL_CPU_CORES else f" (the goals are set for {GOAL_CPU_CORES} cores)"
    print(f"p50 ≤ {GOALS_MS['p50']:.0f} ms: {mark(met['p50'])}; p95 ≤ {GOALS_MS['p95']:.0f} ms: "
          f"{mark(met['p95'])}; no error: {mark(met['no_errors'])}{cores}. Machine: {facts['hardware']}. "
          f"Figures in {path}"
          + ("; --quick: the numbers mean nothing" if args.quick else ""))
    return 0


if __name__ == "__main__":
    run_command(main)
