"""`footnote search "QUESTION"`: print the best-matching sentences, ranked."""

from __future__ import annotations

import argparse
import json

from service.cli import UsageError
from service.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="show the sentences that best match a question")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None, help="how many sentences (default FOOTNOTE_TOP_K)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--document", action="append", default=None, dest="documents",
                   help="search only this document id (repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.answer.service import clean_question
    from service.container import Container

    question = clean_question(args.question, settings.max_question_chars)
    top_k = settings.top_k if args.top_k is None else args.top_k
    if top_k < 1:
        raise UsageError("--top-k must be at least 1")
    hits = Container(settings).open_retriever().retrieve(question, top_k, args.documents)
    if args.json:
        results = [{**h.sentence.to_dict(), "score": round(h.score, 6)} for h in hits]
        results = [
            {k: r[k] for k in ("document", "sentence", "start", "end", "score", "text")} for r in results
        ]
        print(json.dumps({"results": results}, ensure_ascii=False, indent=2))
        return 0
    from service.answer.render import printable

    for rank, h in enumerate(hits, start=1):
        s = h.sentence
        print(printable(f"{rank:>2}. {s.document} #{s.sentence} [{s.start}:{s.end}] score={h.score:.4f}"))
        print(printable(f"    {s.text}"))
    return 0
