"""Retrieval benchmark: ingest and search synthetic corpora of growing size.

Not a test. For each size it generates a corpus of that many sentences (templates filled
from word lists and generated names, so the vocabulary keeps growing with the corpus), then
in a child process ingests it into a temporary data folder (sentences/s including
embeddings, phase timings, peak memory), and in a second child process loads the index and
runs the search queries (load time, p50/p95 latency of `HybridRetriever.retrieve` after
load and a warm-up, where the time goes, recall of the sentence each query was made from,
peak memory).

    .venv/bin/python evals/bench_retrieval.py --sizes 1000,10000 --out bench.json
    .venv/bin/python evals/bench_retrieval.py --sizes 10000 --store postgresql://…

With `--store` the index goes into that PostgreSQL database (schema `bench_<size>`, replaced
on every run) instead of a data folder: "dense" is then the time spent in the database (the
pgvector scan and the cosine look-ups of keyword-only hits), index MB the schema's size, and
each result also has `file_recall_at_k`, the file index's recall on the same queries.

Prints a markdown table; `--out` writes everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIRST = """Ada Bruno Carla Dmitri Elena Farid Greta Hiro Ines Jonas Kamala Luca Mei Nadia Omar
Priya Quentin Rosa Sven Tariq Uma Viktor Wen Ximena Yusuf Zofia Amara Bastian Chiara Diego
Esther Felix Gaia Henrik Ilse Joaquin Keiko Lars Malik Nora Otto Paloma Rafael Saskia Tomas
Ulla Vera Willem Yara Zane Anouk Bjorn Celine Dario Emeka Fatima Goran Hana Ivo Jana""".split()
SYLLABLES = """ka lo mi ren sto bar vel tan qui dor fen gal hus ira jok lem nor pra sel tur
ulm vas wen yor zim ash bel cor dun eth fal gor hal ist jun kel mor nes orb pel rud sar tol
ung vir wol xan yel zor bra cle dri fro gri kla ple sna tri""".split()
VERBS = """repaired inspected painted sold photographed described measured delivered rebuilt
designed insured borrowed restored catalogued moved auctioned cleaned surveyed donated tested
assembled dismantled guarded mapped licensed exported imported renovated financed audited""".split()
ADJECTIVES = """old red wooden copper rusty ancient narrow tall silver green hidden floating
stone broken famous quiet northern southern eastern western small enormous iron glass marble
crooked painted golden secret abandoned restored""".split()
NOUNS = """tractor crane bridge clock kettle barn engine lighthouse windmill library ferry
tower fountain greenhouse observatory warehouse chapel market harbour railway tunnel aqueduct
brewery bakery mill vineyard orchard monastery theatre museum canal dam quarry pier""".split()
TOPICS = """rainfall tourism fishing wages housing exports traffic tuition harvests electricity
pensions vaccines broadband timber tariffs ridership emissions literacy rents salaries""".split()
CHANGES = "rose fell doubled halved stabilised recovered collapsed improved declined surged".split()
MONTHS = """January February March April May June July August September October November
December""".split()
REASONS = """because of a long drought | after the council voted twice | despite strong local
protests | thanks to a regional grant | while the river was flooding | before the winter
storms arrived | under a new national law | following a public inquiry""".replace("\n", " ").split(" | ")


def _name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


class Generator:
    """Sentences from templates; every sentence keeps the facts a question can ask about."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        name_rng = random.Random(seed + 1)
        self.surnames = sorted({_name(name_rng, name_rng.choice((2, 3))) for _ in range(4000)})
        self.places = sorted({_name(name_rng, name_rng.choice((2, 3))) + name_rng.choice(
            ("", "", "burg", "ford", "ville", " Bay", " Falls", "ia")) for _ in range(1500)})

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(self.surnames)}"

    def sentence(self) -> tuple[str, str]:
        """(sentence, a question it answers)."""
        r = self.rng
        who, place, year = self.person(), r.choice(self.places), r.randint(1890, 2024)
        thing = f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)}"
        verb = r.choice(VERBS)
        kind = r.randrange(6)
        if kind == 0:
            return (f"In {r.choice(MONTHS)} {year}, {who} {verb} the {thing} in {place} "
                    f"{r.choice(REASONS)}.", f"Who {verb} the {thing} in {place}?")
        if kind == 1:
            topic, change = r.choice(TOPICS), r.choice(CHANGES)
            pct = r.randint(2, 90)
            return (f"According to {who}, {topic} in {place} {change} by {pct} percent in {year}, "
                    f"{r.choice(REASONS)}.", f"What happened to {topic} in {place} in {year}?")
        if kind == 2:
            n = r.randint(3, 900)
            return (f"The {thing} near {place} was {verb} by a team of {n} volunteers led by {who}.",
                    f"How many volunteers worked on the {thing} near {place}?")
        if kind == 3:
            other = r.choice(self.places)
            return (f"{who} travelled from {place} to {other} to see the {thing}, "
                    f"which had been {verb} in {year}.", f"Why did {who} travel to {other}?")
        if kind == 4:
            cost = r.randint(2, 950)
            return (f"Records from {year} show that the {thing} in {place} cost {cost} thousand "
                    f"crowns to build.", f"How much did the {thing} in {place} cost?")
        topic = r.choice(TOPICS)
        return (f"{who}, a historian from {place}, argues that {topic} shaped the town more than "
                f"any {r.choice(NOUNS)} ever did.", f"Which historian from {place} wrote about {topic}?")


def write_corpus(folder: Path, sentences: int, seed: int = 7, per_file: int = 100,
                 queries: int = 200) -> list[tuple[str, str]]:
    """Write `sentences` sentences into files of `per_file`; return [(question, source text)]."""
    gen = Generator(seed)
    folder.mkdir(parents=True, exist_ok=True)
    all_pairs = []
    for f in range(0, sentences, per_file):
        paragraphs, para = [], []
        for _ in range(min(per_file, sentences - f)):
            text, question = gen.sentence()
            all_pairs.append((question, text))
            para.append(text)
            if len(para) >= gen.rng.randint(3, 8):
                paragraphs.append(" ".join(para))
                para = []
        if para:
            paragraphs.append(" ".join(para))
        sub = folder / f"part{f // (per_file * 100):03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"doc{f // per_file:05d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    picks = random.Random(seed + 2).sample(range(len(all_pairs)), min(queries, len(all_pairs)))
    return [all_pairs[i] for i in picks]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- child processes -------------------------------------------------------------------------


def _store_settings(url: str, size_label: str, threads: int = 0, batch_size: int = 64,
                    docs: Path | None = None):  # noqa: ANN202
    from service.settings import Settings

    return Settings(store=url, store_schema=f"bench_{size_label}", embed_threads=threads,
                    embed_batch_size=batch_size, **({"docs_dir": docs} if docs else {}))


class _Phases:
    """Times an ingest's phases from its progress messages: read + segment, embed, then the
    last phase (`last`: the message that starts it, e.g. "building keyword index")."""

    def __init__(self, last: str) -> None:
        self.last = last
        self.marks: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def progress(self, message: str) -> None:
        if message.startswith("embedding "):
            self.marks["embed_start"] = time.perf_counter()
        elif message.startswith(self.last):
            self.marks["last_start"] = time.perf_counter()

    def figures(self, report, last_name: str) -> dict:  # noqa: ANN001 - an IngestReport
        total = time.perf_counter() - self.t0
        embed_s = self.marks["last_start"] - self.marks["embed_start"]
        return {
            "sentences": report.sentences,
            "documents": report.documents,
            "ingest_s": total,
            "ingest_sentences_per_s": report.sentences / total,
            "phase_read_segment_s": self.marks["embed_start"] - self.t0,
            "phase_embed_s": embed_s,
            "embed_sentences_per_s": report.embedded / embed_s,
            last_name: self.t0 + total - self.marks["last_start"],
        }


def child_ingest_store(docs: Path, url: str, label: str, batch_size: int, threads: int) -> dict:
    import psycopg

    from service.container import Container

    settings = _store_settings(url, label, threads, batch_size, docs)
    with psycopg.connect(url, autocommit=True) as conn:  # a fresh schema: a full ingest
        conn.execute(f"DROP SCHEMA IF EXISTS {settings.store_schema} CASCADE")
    phases = _Phases("publishing to")
    report = Container(settings).ingest(phases.progress)
    figures = phases.figures(report, "phase_publish_s")
    with psycopg.connect(url) as conn:
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            [settings.store_schema]).fetchone()[0]
    return {**figures, "index_bytes": int(size), "ingest_peak_rss_mb": _peak_rss_mb()}


def child_ingest(docs: Path, data: Path, batch_size: int, threads: int) -> dict:
    from service.index import store
    from service.ingest.pipeline import ingest

    phases = _Phases("building keyword index")
    report = ingest(docs, data, phases.progress, batch_size, threads)
    figures = phases.figures(report, "phase_bm25_write_s")
    folder = store.current_folder(data)
    parts = {name: _folder_bytes(folder / name) if (folder / name).is_dir()
             else (folder / name).stat().st_size
             for name in ("embeddings.npy", "bm25", "texts.json", "sentences.json", "manifest.json")}
    return {**figures, "index_bytes": _folder_bytes(folder), "index_parts_bytes": parts,
            "ingest_peak_rss_mb": _peak_rss_mb()}


class _Timer:
    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - t
        return timed


def child_search(data: Path, queries: list[tuple[str, str]], top_k: int, threads: int,
                 store: str | None = None, label: str = "") -> dict:
    import numpy as np

    from service.container import Container
    from service.settings import Settings

    rss_before = _peak_rss_mb()
    container = Container(_store_settings(store, label, threads) if store
                          else Settings(data_dir=data, embed_threads=threads))
    t = time.perf_counter()
    container.encoder(for_queries=True)
    encoder_load = time.perf_counter() - t
    t = time.perf_counter()
    retriever = container.open_retriever()
    index_load = time.perf_counter() - t
    rss_loaded = _peak_rss_mb()

    # Where the time goes: wrap the query encoder, the BM25 search and the dense matmul (for a
    # database store: the time holding a connection, i.e. the queries).
    embed_t, bm25_t, matmul_t = _Timer(), _Timer(), _Timer()
    retriever._encoder.encode = embed_t.wrap(retriever._encoder.encode)
    if retriever._keyword is not None:
        retriever._keyword.search = bm25_t.wrap(retriever._keyword.search)

    if store:
        from contextlib import contextmanager

        connection = retriever.store.connection

        @contextmanager
        def timed_connection():  # noqa: ANN202
            t0 = time.perf_counter()
            try:
                with connection() as conn:
                    yield conn
            finally:
                matmul_t.total += time.perf_counter() - t0

        retriever.store.connection = timed_connection
    else:
        class TimedMatrix(np.ndarray):
            def __matmul__(self, other):
                t0 = time.perf_counter()
                out = np.asarray(self).__matmul__(other)
                matmul_t.total += time.perf_counter() - t0
                return out

        retriever.index.embeddings = retriever.index.embeddings.view(TimedMatrix)

    for question, _ in queries[:10]:  # warm-up (first calls allocate, fill caches)
        retriever.retrieve(question, top_k)
    rows = []
    found = 0
    for question, source in queries:
        before = (embed_t.total, bm25_t.total, matmul_t.total)
        t0 = time.perf_counter()
        hits = retriever.retrieve(question, top_k)
        total = time.perf_counter() - t0
        embed, bm25, matmul = (a - b for a, b in zip((embed_t.total, bm25_t.total, matmul_t.total), before))
        rows.append((total, embed, matmul, bm25, total - embed - matmul - bm25))
        found += any(h.sentence.text == source for h in hits)
    ms = np.array(rows) * 1000
    names = ["total", "query_embedding", "dense_matmul", "bm25", "topk_fusion_rest"]
    return {
        "encoder_load_s": encoder_load,
        "index_load_s": index_load,
        "search_p50_ms": float(np.percentile(ms[:, 0], 50)),
        "search_p95_ms": float(np.percentile(ms[:, 0], 95)),
        "breakdown_p50_ms": {n: float(np.percentile(ms[:, i], 50)) for i, n in enumerate(names)},
        "breakdown_mean_ms": {n: float(ms[:, i].mean()) for i, n in enumerate(names)},
        "queries": len(queries),
        "recall_at_k": found / len(queries),
        "top_k": top_k,
        "serve_rss_before_load_mb": rss_before,
        "serve_rss_after_load_mb": rss_loaded,
        "serve_peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(args: list[str], env: dict[str, str] | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    try:
        subprocess.run([sys.executable, __file__, "--child-out", str(path), *args], check=True, cwd=ROOT,
                       env={**os.environ, **(env or {})})
        return json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)


def bench_size(size: int, workdir: Path, args: argparse.Namespace) -> dict:
    base = workdir / f"n{size}"
    if base.exists():
        shutil.rmtree(base)
    docs, data = base / "docs", base / "data"
    t = time.perf_counter()
    queries = write_corpus(docs, size, seed=args.seed, queries=args.queries)
    generate_s = time.perf_counter() - t
    (base / "queries.json").write_text(json.dumps(queries))
    print(f"[{size}] corpus written in {generate_s:.1f} s; ingesting ...", file=sys.stderr, flush=True)
    result = {"size": size, "generate_s": generate_s}
    store = ["--store", args.store, "--label", str(size)] if args.store else []
    result.update(_run_child(["--child", "ingest", "--docs", str(docs), "--data", str(data),
                              "--batch-size", str(args.batch_size), "--threads", str(args.threads), *store]))
    print(f"[{size}] ingested {result['sentences']} sentences at "
          f"{result['ingest_sentences_per_s']:.0f}/s; searching ...", file=sys.stderr, flush=True)
    search_threads = args.threads if args.search_threads is None else args.search_threads
    blas = {"OPENBLAS_NUM_THREADS": str(search_threads), "OMP_NUM_THREADS": str(search_threads),
            "MKL_NUM_THREADS": str(search_threads)} if search_threads else None
    result.update(_run_child(["--child", "search", "--data", str(data), "--queries-file",
                              str(base / "queries.json"), "--top-k", str(args.top_k),
                              "--threads", str(search_threads), *store], blas))
    if args.store and args.compare_file:  # the file index's recall on the same queries
        print(f"[{size}] the file index on the same corpus, for recall ...", file=sys.stderr, flush=True)
        _run_child(["--child", "ingest", "--docs", str(docs), "--data", str(data),
                    "--batch-size", str(args.batch_size), "--threads", str(args.threads)])
        file = _run_child(["--child", "search", "--data", str(data), "--queries-file",
                           str(base / "queries.json"), "--top-k", str(args.top_k),
                           "--threads", str(search_threads)], blas)
        result["file_recall_at_k"] = file["recall_at_k"]
        result["file_search_p50_ms"] = file["search_p50_ms"]
        result["file_search_p95_ms"] = file["search_p95_ms"]
    result["search_threads"] = search_threads
    result["load_average_1m_after"] = os.getloadavg()[0]  # > cpus means the numbers are contended
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def markdown(results: list[dict]) -> str:
    head = ("| sentences | ingest s | ingest sent/s | embed sent/s | index MB | ingest peak RSS MB "
            "| load s (index + encoder) | serve RSS MB | search p50 ms | search p95 ms "
            "| p50 embed / matmul / bm25 / rest ms | recall@k |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        b = r["breakdown_p50_ms"]
        lines.append(
            f"| {r['sentences']:,} | {r['ingest_s']:.1f} | {r['ingest_sentences_per_s']:.0f} "
            f"| {r['embed_sentences_per_s']:.0f} | {r['index_bytes'] / 2**20:.1f} "
            f"| {r['ingest_peak_rss_mb']:.0f} | {r['index_load_s']:.2f} + {r['encoder_load_s']:.2f} "
            f"| {r['serve_peak_rss_mb']:.0f} | {r['search_p50_ms']:.2f} | {r['search_p95_ms']:.2f} "
            f"| {b['query_embedding']:.2f} / {b['dense_matmul']:.2f} / {b['bm25']:.2f} / "
            f"{b['topk_fusion_rest']:.2f} | {r['recall_at_k']:.2f}"
            + (f" (file index {r['file_recall_at_k']:.2f})" if "file_recall_at_k" in r else "") + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated sentence counts")
    p.add_argument("--out", type=Path, help="write results as JSON here")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    p.add_argument("--search-threads", type=int, default=None,
                   help="threads for the search run (onnxruntime and BLAS); default: --threads")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, help="keep corpora/indexes here instead of a temp folder")
    p.add_argument("--keep", action="store_true", help="do not delete each size's corpus and index")
    p.add_argument("--store", help="postgresql://… : bench the PostgreSQL store instead of the file index")
    p.add_argument("--no-compare-file", dest="compare_file", action="store_false",
                   help="with --store: skip building the file index for the recall comparison")
    # internal: child processes
    p.add_argument("--child", choices=["ingest", "search"], help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--docs", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        sys.path.insert(0, str(ROOT))
        if args.child == "ingest" and args.store:
            result = child_ingest_store(args.docs, args.store, args.label, args.batch_size, args.threads)
        elif args.child == "ingest":
            result = child_ingest(args.docs, args.data, args.batch_size, args.threads)
        else:
            queries = [tuple(q) for q in json.loads(args.queries_file.read_text())]
            result = child_search(args.data, queries, args.top_k, args.threads, args.store, args.label)
        args.child_out.write_text(json.dumps(result))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="footnote-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            results.append(bench_size(size, workdir, args))
            if args.out:  # after every size, so a long run leaves partial results
                args.out.write_text(json.dumps(_envelope(results, args), indent=2))
    print(markdown(results))
    print(f"\n{os.cpu_count()} CPUs; 1-minute load average after each size: "
          + ", ".join(f"{r['load_average_1m_after']:.1f}" for r in results))
    return 0


def _envelope(results: list[dict], args: argparse.Namespace) -> dict:
    import platform

    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "settings": {"queries": args.queries, "top_k": args.top_k, "batch_size": args.batch_size,
                     "threads": args.threads, "search_threads": args.search_threads,
                     "seed": args.seed, "store": "postgresql" if args.store else "files"},
        "results": results,
    }


if __name__ == "__main__":
    sys.exit(main())
