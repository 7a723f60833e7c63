"""`footnote ask "QUESTION"`: a verified, cited answer from the documents."""

from __future__ import annotations

import argparse

from service.cli import UsageError
from service.llm.registry import NAMES
from service.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question from the documents, with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.add_argument("--backend", choices=NAMES, default=None,
                   help="answer with this backend (default FOOTNOTE_LLM, or auto)")
    p.add_argument("--top-k", type=int, default=None, help="sentences to retrieve (default FOOTNOTE_TOP_K)")
    p.add_argument("--document", action="append", default=None, dest="documents",
                   help="answer only from this document id (repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.answer.render import as_text
    from service.answer.service import clean_question
    from service.container import Container

    if args.backend:  # the person at the terminal is the operator: the flag sets the default
        settings = settings.model_copy(update={"llm": args.backend})
    question = clean_question(args.question, settings.max_question_chars)
    if args.top_k is not None and args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    service = Container(settings).answer_service(quiet=args.json)
    answer = service.ask(question, args.top_k, args.documents)
    print(answer.model_dump_json(indent=2) if args.json else as_text(answer))
    return 0
