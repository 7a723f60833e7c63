"""What the model worker and the AMX guard cost, on this machine. Not a test.

1. llama.cpp's extra buffer types (repacked weights; AMX where compiled in) on vs off:
   prompt tokens/s and generated tokens/s, in-process, same prompt; with --batches, only the
   time to evaluate n new tokens after a 300-token prefix, for each n (README "Speed").
2. The worker protocol alone: answers of ~50 streamed pieces through a scripted worker
   (tests/llm/fake_model_worker.py), so only the process boundary is timed.
3. The worker process boundary with the real model: the same answer prompts (the seed gold questions, retrieved
   and packed as the service does) generated in-process and through the worker, alternating,
   each with its own warm prefix cache; reports per-answer time and the overhead.

    .venv/bin/python evals/bench_worker.py [--questions 12] [--out bench_worker.json]
    .venv/bin/python evals/bench_worker.py --batches 1,2,4,8,16,32,64,128,256,512
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the scripted worker is imported as tests.llm.fake_model_worker

from service.container import Container  # noqa: E402
from service.llm.base import Generation  # noqa: E402
from service.llm.embedded import DEFAULT_MODEL_NAME, get_embedded_backend, load_backend  # noqa: E402
from service.llm.model_files import ensure_model  # noqa: E402
from service.settings import Settings  # noqa: E402


def answer_prompts(n: int) -> list[list]:
    service = Container(Settings()).answer_service(quiet=True)
    lines = (ROOT / "evals" / "seeds_gold.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()][:n]
    return [service.prepare(q).messages() for q in questions]


def timed(backend, messages, max_tokens: int) -> tuple[float, Generation]:  # noqa: ANN001
    t = time.perf_counter()
    generation = backend.generate(messages, max_tokens=max_tokens)
    return time.perf_counter() - t, generation


def _in_process(extra: str):  # noqa: ANN202 - EmbeddedBackend
    settings = Settings()
    return load_backend(ensure_model(settings), name=DEFAULT_MODEL_NAME, n_ctx=settings.llm_context_window,
                        threads=settings.llm_threads, timeout_s=600, extra_buffers=extra)


def throughput(extra: str, messages) -> dict:  # noqa: ANN001
    backend = _in_process(extra)
    llm = backend._llm  # noqa: SLF001
    tokens = llm.tokenize(json.dumps(messages).encode())[:512]
    runs = []
    for _ in range(3):
        llm.reset()
        t = time.perf_counter()
        llm.eval(tokens)
        prompt_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(32):
            llm.eval([llm.sample(temp=0.0)])
        runs.append((len(tokens) / prompt_s, 32 / (time.perf_counter() - t)))
    llm.close()
    best = max(runs)
    return {"extra_buffers": backend.extra_buffers, "prompt_tokens_per_s": round(best[0], 1),
            "generated_tokens_per_s": round(max(r[1] for r in runs), 1), "prompt_tokens": len(tokens)}


def batch_costs(extra: str, messages, sizes: list[int], prefix: int = 300) -> dict:  # noqa: ANN001
    """Milliseconds to evaluate n new tokens after `prefix` evaluated ones (best of 3 each): what
    an answer's new prompt tokens (a batch) and each written token (n = 1) cost."""
    backend = _in_process(extra)
    llm = backend._llm  # noqa: SLF001
    tokens = llm.tokenize(json.dumps(messages).encode())
    tokens = (tokens * (1 + (prefix + max(sizes)) // len(tokens)))[: prefix + max(sizes)]
    llm.eval(tokens[:prefix])
    state = llm.save_state()
    costs = {}
    for n in sizes:
        best = float("inf")
        for _ in range(3):
            llm.load_state(state)
            t = time.perf_counter()
            llm.eval(tokens[prefix : prefix + n])
            best = min(best, time.perf_counter() - t)
        costs[n] = round(best * 1000, 1)
    llm.close()
    return {"extra_buffers": backend.extra_buffers, "ms_by_batch": costs}


def protocol_overhead(answers: int = 300) -> dict:
    from service.llm.worker_client import WorkerBackend

    backend = WorkerBackend([sys.executable, "-m", "tests.llm.fake_model_worker"], model="fake",
                            queue_wait_s=10, timeout_s=10)
    backend.start()
    messages = [{"role": "user", "content": "Sentences:\n[1] " + "word " * 120 + ".\n\nQuestion: q"}]
    times = []
    for _ in range(answers):
        t = time.perf_counter()
        pieces = len(list(backend.stream(messages, max_tokens=64))) - 1
        times.append(time.perf_counter() - t)
    backend.close()
    times.sort()
    return {"answers": answers, "pieces_per_answer": pieces, "p50_ms": round(times[len(times) // 2] * 1000, 2),
            "p95_ms": round(times[int(len(times) * 0.95)] * 1000, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--batches", default="", help="only time batches of these sizes, e.g. 1,16,128")
    args = parser.parse_args()
    messages = answer_prompts(args.questions)
    if args.batches:
        sizes = [int(n) for n in args.batches.split(",")]
        rows = [batch_costs(extra, messages[0], sizes) for extra in ("on", "off")]
        print("| tokens in the batch | " + " | ".join(map(str, sizes)) + " |")
        print("|---|" + "---|" * len(sizes))
        for row in rows:
            name = "repacked" if row["extra_buffers"] else "not repacked"
            print(f"| {name} | " + " | ".join(f"{row['ms_by_batch'][n]:g} ms" for n in sizes) + " |")
        if args.out:
            args.out.write_text(json.dumps(rows, indent=2))
        return 0

    report: dict = {"throughput": [throughput(extra, messages[0]) for extra in ("on", "off")]}
    for row in report["throughput"]:
        print(f"extra buffers {'on ' if row['extra_buffers'] else 'off'}: prompt {row['prompt_tokens_per_s']} tok/s, "
              f"generation {row['generated_tokens_per_s']} tok/s ({row['prompt_tokens']}-token prompt)")

    report["protocol"] = protocol_overhead()
    print("worker protocol alone: {answers} answers of {pieces_per_answer} pieces, p50 {p50_ms} ms, "
          "p95 {p95_ms} ms per answer".format(**report["protocol"]))

    settings = Settings()
    inproc = load_backend(ensure_model(settings), name=DEFAULT_MODEL_NAME, n_ctx=settings.llm_context_window,
                          threads=settings.llm_threads, timeout_s=600)
    worker = get_embedded_backend(settings)
    for backend in (inproc, worker):  # warm the shared rules-and-examples prefix of each
        backend.generate(messages[0], max_tokens=args.max_tokens)
    pairs = []
    for m in messages:
        a, ga = timed(inproc, m, args.max_tokens)
        b, gb = timed(worker, m, args.max_tokens)
        same = ga.text == gb.text
        pairs.append({"in_process_s": round(a, 3), "worker_s": round(b, 3), "same_text": same})
    inp = [p["in_process_s"] for p in pairs]
    wrk = [p["worker_s"] for p in pairs]
    diff = [w - i for i, w in zip(inp, wrk)]
    report["isolation"] = {
        "answers": len(pairs), "in_process_mean_s": round(statistics.mean(inp), 3),
        "worker_mean_s": round(statistics.mean(wrk), 3), "overhead_median_ms": round(statistics.median(diff) * 1000, 1),
        "overhead_pct_of_mean": round(100 * statistics.mean(diff) / statistics.mean(inp), 2),
        "identical_answers": sum(p["same_text"] for p in pairs), "pairs": pairs,
    }
    iso = report["isolation"]
    print(f"{iso['answers']} answers: in-process mean {iso['in_process_mean_s']} s, worker mean {iso['worker_mean_s']} s; "
          f"overhead median {iso['overhead_median_ms']} ms ({iso['overhead_pct_of_mean']} % of the mean); "
          f"identical answers {iso['identical_answers']}/{iso['answers']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
