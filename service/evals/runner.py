"""Run a gold QA set through the answer service and score it.

The runner only *drives* the system and records what it did; the scoring is
`service.evals.metrics.summarize`. Any `AnswerService` can be injected (a real backend, a
scripted fake, recorded LLM traffic), so the same code scores every backend:

    service = build_service(settings, docs_dir)            # or any AnswerService
    run = run_eval(load_dataset(path), service, backend="extractive")
    run.summary["contains"], run.records[0]["answer"]

Per item it records:

* the answer, whether it refused (`answerable is False`) and its citations;
* a separate ranked retrieval of the top `max(K_VALUES)` sentences (same document scope as
  the answer) for recall@k and MRR;
* per-stage latency from the answer's `timings_ms`;
* tokens from the answer's `usage`. A model backend that reports no usage is estimated with
  tiktoken cl100k (the prompt the service would have sent, and the final answer text), and the
  item is marked `tokens_estimated`. The extractive backend, and a refusal made before any
  model call (nothing relevant retrieved), cost 0 tokens: no model ran.

Datasets may scope a question to documents (`doc_ids`); ids are resolved against the index
(`id`, `id.txt`, `id.md`). Items without a `category` get one from their id prefix and
answerability (e.g. `squad2/answerable`), so external sets get a breakdown too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.tokens import count_tokens
from service.answer.models import Answer
from service.answer.service import AnswerService
from service.evals.dataset import evidence_of
from service.index.hybrid import UnknownDocuments
from service.llm import registry
from service.evals.metrics import (
    K_VALUES,
    ItemResult,
    Supports,
    default_supports,
    failure_reasons,
    normalize_ws,
    summarize,
)
from service.settings import Settings

__all__ = [
    "EvalRun",
    "build_service",
    "category_of",
    "eval_data_dir",
    "run_eval",
]

RETRIEVAL_DEPTH = max(K_VALUES)

Progress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class EvalRun:
    """The outcome of one run: metric inputs, rich per-item records and the summary."""

    results: list[ItemResult]
    records: list[dict[str, Any]]  # one per item: question, answer, citations, reasons, ...
    summary: dict[str, Any]  # `metrics.summarize` output
    wall_s: float
    backends: list[str] = field(default_factory=list)  # backends that actually answered
    models: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- wiring


def eval_data_dir(settings: Settings, docs_dir: Path) -> Path:
    """Where the index for `docs_dir` lives during an eval.

    The live corpus (`settings.docs_dir`) reuses the live index; any other folder gets its
    own index under `<data_dir>/evals/<name>-<hash of the folder path>`, so an eval never
    replaces the index that `ask`/`serve` use.
    """
    docs = Path(docs_dir).resolve()
    if docs == Path(settings.docs_dir).resolve():
        return Path(settings.data_dir)
    digest = hashlib.sha256(str(docs).encode("utf-8")).hexdigest()[:12]
    return Path(settings.data_dir) / "evals" / f"{docs.name}-{digest}"


def build_service(settings: Settings, docs_dir: Path, *, backend: str | None = None,
                  quiet: bool = True) -> AnswerService:
    """An AnswerService over `docs_dir` (ingested into `eval_data_dir`, incremental)."""
    from service.container import Container

    data_dir = eval_data_dir(settings, docs_dir)
    update: dict[str, Any] = {"docs_dir": Path(docs_dir), "data_dir": data_dir}
    if data_dir != Path(settings.data_dir):  # a shared store keeps each eval corpus in its own schema
        update["store_schema"] = f"{settings.store_schema}_eval_{data_dir.name.split('-')[-1]}"[:63]
    if backend:
        update["llm"] = backend
    return Container(settings.model_copy(update=update)).answer_service(quiet=quiet)


# --------------------------------------------------------------------------- items


def category_of(item: Mapping[str, Any]) -> str:
    """The item's category; external sets without one: `<id prefix>/<answerable|unanswerable>`."""
    if item.get("category"):
        return str(item["category"])
    kind = "answerable" if item.get("answerable") else "unanswerable"
    prefix = str(item.get("id", "")).split(":", 1)[0] if ":" in str(item.get("id", "")) else ""
    return f"{prefix}/{kind}" if prefix else kind


def _resolve_docs(item: Mapping[str, Any], known: set[str]) -> list[str] | None:
    ids = item.get("doc_ids") or []
    if not ids:
        return None  # the whole corpus
    out = []
    for d in ids:
        match = next((c for c in (d, f"{d}.txt", f"{d}.md") if c in known), None)
        if match is None:
            raise UnknownDocuments(f"item {item.get('id')!r}: document {d!r} is not in the index")
        out.append(match)
    return out


def _estimate_tokens(service: AnswerService, question: str, answer: Answer, top_k: int,
                     documents: list[str] | None) -> tuple[int, int]:
    """Tokens a model call for this answer cost: the prompt the service builds, and the answer."""
    prompt = service.prompt_tokens(question, top_k, documents)
    return (prompt, count_tokens(answer.answer)) if prompt else (0, 0)  # 0: refused before a model call


def _gold_rank(ranked: Sequence[str], gold: Sequence[str]) -> int | None:
    wanted = {normalize_ws(g) for g in gold}
    for rank, text in enumerate(ranked, start=1):
        if normalize_ws(text) in wanted:
            return rank
    return None


def _segmented_differently(cited: Sequence[str], gold: Sequence[str]) -> bool:
    cs = [normalize_ws(c) for c in cited]
    gs = [normalize_ws(g) for g in gold]
    return any(c != g and (g in c or c in g) for c in cs for g in gs if c and g)


def _why(result: ItemResult, reasons: list[str], gold_rank: int | None, top_dense: float | None,
         min_relevance: float) -> list[str]:
    """Human-readable detail next to each failure reason (where the pipeline lost the point)."""
    notes: list[str] = []
    if result.answerable and result.gold_evidence and result.retrieved_texts is not None:
        notes.append(f"gold evidence retrieved at rank {gold_rank}" if gold_rank
                     else f"retrieval miss: no gold evidence in the top {RETRIEVAL_DEPTH}")
    if reasons and result.answerable and result.gold_answers:
        notes.append(f"expected {result.gold_answers[0]!r}")
    if "missing citation" in reasons and _segmented_differently(result.citation_texts, result.gold_evidence):
        notes.append("a cited sentence contains gold evidence (or is inside it) but is not the same "
                     "sentence: the segmenter cut it differently")
    if top_dense is not None and ("answered unanswerable" in reasons or "false refusal" in reasons):
        side = ">=" if top_dense >= min_relevance else "<"
        notes.append(f"best dense score {top_dense:.3f} {side} min_relevance {min_relevance:g}")
    return notes


# --------------------------------------------------------------------------- run


def run_eval(
    items: Sequence[Mapping[str, Any]],
    service: AnswerService,
    *,
    backend: str | None = None,
    top_k: int | None = None,
    limit: int | None = None,
    use_doc_ids: bool = True,
    supports: Supports = default_supports,
    progress: Progress | None = None,
) -> EvalRun:
    """Ask every item (the first `limit`), score the run, return results and records.

    `backend=None` uses the service's configured backend. Exceptions from the service (a
    backend error with fallback off, a missing document) abort the run: a gate must not
    pass on a half-scored set.
    """
    chosen = list(items)[:limit] if limit is not None else list(items)
    known = set(service.index.manifest)
    k = top_k or service.settings.top_k
    results: list[ItemResult] = []
    records: list[dict[str, Any]] = []
    backends: dict[str, None] = {}
    models: dict[str, None] = {}
    t0 = time.perf_counter()
    for i, item in enumerate(chosen):
        question = str(item["question"])
        documents = _resolve_docs(item, known) if use_doc_ids else None
        answer = service.ask(question, top_k, documents, backend)
        hits = service.retriever.retrieve(question, RETRIEVAL_DEPTH, documents)
        ranked = [h.sentence.text for h in hits]

        estimated = False
        prompt_t, completion_t = answer.usage.prompt_tokens, answer.usage.completion_tokens
        if registry.spec(answer.backend).generative and not (prompt_t or completion_t):
            prompt_t, completion_t = _estimate_tokens(service, question, answer, k, documents)
            estimated = bool(prompt_t or completion_t)

        refused = answer.answerable is False
        result = ItemResult(
            id=str(item["id"]),
            category=category_of(item),
            answerable=bool(item["answerable"]),
            refused=refused,
            answer="" if refused else answer.answer,
            citation_texts=[c.text for c in answer.citations],
            gold_answers=list(item.get("answers") or []),
            gold_evidence=evidence_of(item),
            retrieved_texts=ranked,
            latency_ms=answer.timings_ms.model_dump(),
            prompt_tokens=prompt_t,
            completion_tokens=completion_t,
        )
        reasons = failure_reasons(result)
        gold_rank = _gold_rank(ranked, result.gold_evidence) if result.gold_evidence else None
        record = {
            "id": result.id,
            "category": result.category,
            "question": question,
            "answerable": result.answerable,
            "refused": refused,
            "answer": answer.answer,
            "citations": [c.model_dump(include={"n", "document", "sentence", "text"})
                          for c in answer.citations],
            "gold_answers": result.gold_answers,
            "gold_evidence": result.gold_evidence,
            "documents": documents,
            "passed": not reasons,
            "reasons": reasons,
            "why": _why(result, reasons, gold_rank, max((h.dense for h in hits[:k]), default=None),
                        service.settings.min_relevance),
            "gold_rank": gold_rank,
            "backend": answer.backend,
            "model": answer.model,
            "latency_ms": result.latency_ms,
            "prompt_tokens": prompt_t,
            "completion_tokens": completion_t,
            "tokens_estimated": estimated,
            "verification": answer.verification.model_dump(),
            "warnings": list(answer.warnings),
            "refusal_reason": answer.refusal_reason,
            "check": answer.check.model_dump() if answer.check else None,
        }
        results.append(result)
        records.append(record)
        backends[answer.backend] = None
        models[answer.model] = None
        if progress:
            progress(i + 1, len(chosen), record)
    wall = time.perf_counter() - t0
    return EvalRun(results, records, summarize(results, supports), wall, list(backends), list(models))
