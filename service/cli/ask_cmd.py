"""`footnote ask "QUESTION"`: a verified, cited answer from the documents."""

from __future__ import annotations

import argparse
import sys

from service.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question from the documents, with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.add_argument("--backend", choices=["embedded", "openai", "extractive"], default=None,
                   help="answer with this backend (default FOOTNOTE_LLM, or auto)")
    p.add_argument("--top-k", type=int, default=None, help="sentences to retrieve (default FOOTNOTE_TOP_K)")
    p.add_argument("--document", action="append", default=None, dest="documents",
                   help="answer only from this document id (repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from service.answer.render import as_text
    from service.answer.service import InvalidQuestion, clean_question
    from service.container import answer_service
    from service.index.hybrid import UnknownDocuments
    from service.index.store import IngestBusy
    from service.ingest.corpus import CorpusError
    from service.llm.base import LLMError

    settings = get_settings()
    try:
        question = clean_question(args.question, settings.max_question_chars)
    except InvalidQuestion as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.top_k is not None and args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    try:
        service = answer_service(settings, quiet=args.json)
        answer = service.ask(question, args.top_k, args.documents, args.backend)
    except (CorpusError, IngestBusy, UnknownDocuments, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(answer.model_dump_json(indent=2) if args.json else as_text(answer))
    return 0
