"""HTTP benchmark: `/v1/ask` throughput and latency, and `/healthz` while a model generates.

Not a test. Starts the service as a child process on loopback (`footnote serve --port 0`,
the seed corpus, a temporary data folder), then:

1. `/v1/ask` with the extractive backend (so no model dominates): a fixed number of requests
   at concurrency 1, 8 and 32 (asyncio + httpx, questions from evals/seeds_gold.jsonl),
   after a warm-up; requests/s and p50/p95 latency, and any non-200 responses.
2. `/healthz` latency, idle and while answers are generating: with the embedded model when it
   is installed (a second child process, FOOTNOTE_LLM=embedded), else with a fake model that
   holds the generation slot (`--generation fake`).

Everything is bounded: fixed request counts, per-request timeouts, children killed at the end.

    .venv/bin/python evals/bench_http.py --requests 300 --out bench_http.json

Prints a markdown table; `--out` writes everything as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "evals" / "seeds_gold.jsonl").read_text().splitlines()
             if line.strip()]


# ---- the service under test ------------------------------------------------------------------


class Service:
    """A child process serving Footnote on a free loopback port."""

    def __init__(self, env: dict[str, str], argv: list[str] | None = None) -> None:
        argv = argv or [sys.executable, "-m", "service.cli.main", "serve", "--host", "127.0.0.1", "--port", "0"]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.url = self._wait_for_url(timeout=180)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            match = re.search(r"listening on (http://\S+?) ", line)
            if match:
                return match.group(1)
        self.stop()
        self.log.seek(0)
        raise RuntimeError(f"the service did not start:\n{self.log.read()[-3000:]}")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.url}/readyz", timeout=5)
            if r.status_code == 200:
                return
            time.sleep(0.5)
        raise RuntimeError(f"not ready after {timeout:g} s: {r.text}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- load ------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def ask_load(url: str, requests: int, concurrency: int, timeout: float) -> dict:
    """`requests` POST /v1/ask at `concurrency` in flight; latency of each, requests/s overall."""
    questions = itertools.cycle(QUESTIONS)
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        queue: asyncio.Queue = asyncio.Queue()
        for _ in range(requests):
            queue.put_nowait(next(questions))

        async def worker() -> None:
            while not queue.empty():
                question = queue.get_nowait()
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/ask", json={"question": question, "backend": "extractive"})
                    statuses[r.status_code] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "requests": requests, "seconds": round(elapsed, 2),
            "rps": round(requests / elapsed, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 95) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1),
            "statuses": {str(k): v for k, v in statuses.items()}}


async def healthz_probe(url: str, samples: int, interval: float, while_generating: bool, backend: str,
                        generations: int) -> dict:
    """/healthz latency, optionally while `generations` answers are being generated."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        tasks = []
        async def timed_answer(question: str) -> tuple[httpx.Response, float]:
            t = time.perf_counter()
            r = await client.post("/v1/ask", json={"question": question, "backend": backend}, timeout=600)
            return r, time.perf_counter() - t

        if while_generating:
            tasks = [asyncio.create_task(timed_answer(q)) for q in QUESTIONS[:generations]]
            await asyncio.sleep(1.0)  # let retrieval finish and generation start
        for _ in range(samples):
            if tasks and all(t.done() for t in tasks):
                break
            t = time.perf_counter()
            r = await client.get("/healthz")
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200
            await asyncio.sleep(interval)
        generating_after = bool(tasks) and not all(t.done() for t in tasks)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    answered = [r for r, _ in (x for x in results if isinstance(x, tuple))]
    seconds = [round(s, 1) for _, s in (x for x in results if isinstance(x, tuple))]
    return {"samples": len(latencies), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p95_ms": round(percentile(latencies, 95) * 1000, 2), "max_ms": round(max(latencies) * 1000, 2),
            "generating_throughout": generating_after if tasks else None,
            "answers": Counter(str(r.status_code) for r in answered) if tasks else None,
            "answer_seconds": seconds if tasks else None,
            "answer_backends": sorted({r.json().get("backend", "?") for r in answered if r.status_code == 200})
            if tasks else None}


# ---- the fake slow model (only with --generation fake) -----------------------------------------


def serve_fake() -> None:
    """Child mode: the app with a model that 'generates' for ~10 s per answer, holding the slot."""
    import re as _re

    import uvicorn

    from service.answer.service import AnswerService
    from service.api.app import create_app
    from service.cli.serve_cmd import first_steps
    from service.container import Container
    from service.llm.base import Generation
    from service.settings import Settings

    class SlowModel:
        name, model = "fake", "slow-fake"

        def generate(self, messages, *, max_tokens, stop=None):  # noqa: ANN001, ANN201
            return Generation("", self.model)

        def stream(self, messages, *, max_tokens, stop=None):  # noqa: ANN001, ANN201
            first = _re.search(r"^\[(\d+)\] (.*)$", messages[-1]["content"], _re.M)
            text = f"{first.group(2).rstrip('.')} [{first.group(1)}]. " * 20
            for i in range(0, len(text), 4):
                time.sleep(0.02)  # ~ a CPU model's pace, without holding the GIL
                yield text[i : i + 4]
            yield Generation(text, self.model)

    settings = Settings()
    model = SlowModel()
    container = Container(settings)
    app = create_app(settings, AnswerService(container.ready_retriever(quiet=True), settings, lambda n: model),
                     container)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # noqa: ANN001
            await super().startup(sockets)
            port = self.servers[0].sockets[0].getsockname()[1]
            print(first_steps(settings, port), flush=True)

    Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")).run()


# ---- main ------------------------------------------------------------------------------------


def embedded_available() -> bool:
    import importlib.util

    model = ROOT / ".footnote" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    return importlib.util.find_spec("llama_cpp") is not None and model.is_file()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--generation", choices=["auto", "embedded", "fake", "none"], default="auto",
                        help="what generates during the /healthz probe (auto: embedded if installed)")
    parser.add_argument("--generations", type=int, default=2, help="answers generating during the probe")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake()
        return 0

    data = tempfile.mkdtemp(prefix="footnote-bench-")
    env = {"FOOTNOTE_DOCS_DIR": str(ROOT / "seeds"), "FOOTNOTE_DATA_DIR": data, "FOOTNOTE_API_KEYS": "",
           "FOOTNOTE_LLM": "extractive", "FOOTNOTE_QUEUE_WAIT_S": "600"}
    report: dict = {"cpu_count": os.cpu_count(), "ask": [], "healthz": {}}

    service = Service(env)
    try:
        asyncio.run(ask_load(service.url, 20, 4, 30))  # warm-up
        for c in (int(x) for x in args.concurrency.split(",")):
            report["ask"].append(asyncio.run(ask_load(service.url, args.requests, c, 60)))
        report["healthz"]["idle"] = asyncio.run(healthz_probe(service.url, 100, 0.01, False, "", 0))
    finally:
        service.stop()

    generation = args.generation
    if generation == "auto":
        generation = "embedded" if embedded_available() else "fake"
    if generation != "none":
        if generation == "embedded":
            model = ROOT / ".footnote" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
            gen_env = {**env, "FOOTNOTE_LLM": "embedded", "FOOTNOTE_MODEL_PATH": str(model)}
            slow = Service(gen_env)
        else:
            slow = Service({**env, "FOOTNOTE_LLM": "openai"},
                           [sys.executable, str(Path(__file__).resolve()), "--serve-fake"])
        try:
            slow.wait_ready(300)
            backend = "embedded" if generation == "embedded" else "openai"
            probe = asyncio.run(healthz_probe(slow.url, 200, 0.05, True, backend, args.generations))
            report["healthz"][f"while_{generation}_generates"] = probe
        finally:
            slow.stop()

    print(f"\n/v1/ask, extractive backend, {args.requests} requests per level, loopback, "
          f"{os.cpu_count()} CPUs (server and load generator share them)\n")
    print("| concurrency | requests/s | p50 ms | p95 ms | max ms | statuses |")
    print("|---:|---:|---:|---:|---:|---|")
    for row in report["ask"]:
        print(f"| {row['concurrency']} | {row['rps']} | {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} | "
              f"{row['statuses']} |")
    print("\n/healthz\n")
    print("| condition | samples | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report["healthz"].items():
        print(f"| {name} | {row['samples']} | {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} |")
        if row.get("answers") is not None:
            print(f"|   (answers: {dict(row['answers'])} in {row['answer_seconds']} s, backends "
                  f"{row['answer_backends']}, still generating at the last probe: "
                  f"{row['generating_throughout']}) | | | | |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=dict), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
