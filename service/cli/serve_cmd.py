"""`footnote serve [--host H] [--port P]`: the HTTP API (OpenAI-compatible too), with uvicorn.

It answers at once from the index already built, while the corpus is re-indexed in the
background (what changed only; a new version is swapped in when published). With no index
yet it ingests first. Once the socket is bound it prints where to send a first question, as a
curl line ready to paste.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import threading

from service.cli import UsageError
from service.settings import Settings

GENERIC_QUESTION = "What do the documents say?"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (and an OpenAI-compatible /v1)")
    p.add_argument("--host", default=None, help="address to listen on (default FOOTNOTE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default FOOTNOTE_PORT, 8000; 0 picks a free one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.api.app import create_app
    from service.api.connections import server_config
    from service.container import Container

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=updates)
    container = Container(settings)
    service, refresh = container.serving_service()
    question = example_question(service.index) if service is not None else GENERIC_QUESTION
    config = server_config(create_app(settings, service, container), settings)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # noqa: ANN001 - uvicorn's signature
            await super().startup(sockets)
            if self.started:  # bound: a failed bind has already exited
                print(first_steps(settings, _bound_port(self) or settings.port, question), flush=True)

    if refresh is not None:  # an ingest killed with the process leaves the previous index intact
        threading.Thread(target=refresh, name="footnote-ingest", daemon=True).start()
    Server(config).run()
    return 0


def _bound_port(server) -> int | None:  # noqa: ANN001 - uvicorn.Server
    for listener in getattr(server, "servers", []):
        for sock in getattr(listener, "sockets", None) or []:
            return sock.getsockname()[1]
    return None


def example_question(index) -> str:  # noqa: ANN001 - IndexData
    """A question the corpus can answer: about the longest name early in the first document."""
    if not index.manifest:
        return GENERIC_QUESTION
    first = sorted(index.manifest)[0]
    names = [m.group() for s in index.sentences_of(first)[:5]
             for m in re.finditer(r"\b[A-Z][\w\-]+(?:\s+[A-Z][\w\-]+)+", s.text)]
    return f"What do the documents say about {max(names, key=len)}?" if names else GENERIC_QUESTION


def first_steps(settings: Settings, port: int, question: str = GENERIC_QUESTION) -> str:
    """Where to send a first question: a ready-to-paste curl line and the OpenAI base URL."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    needs_key = bool(settings.api_key_list)
    auth = ' -H "Authorization: Bearer $FOOTNOTE_KEY"' if needs_key else ""
    body = shlex.quote(json.dumps({"question": question}))
    lines = [
        f"Footnote is listening on {base}: open {base}/ in a browser to ask (API docs: {base}/docs), or ask from a terminal:",
        f"  curl -s {base}/v1/ask -H 'Content-Type: application/json'{auth} -d {body}",
        f"OpenAI-compatible clients: base_url={base}/v1, model=footnote",
    ]
    if needs_key:
        lines.append("(FOOTNOTE_API_KEYS is set: export FOOTNOTE_KEY=<one of the keys> first)")
    return "\n".join(lines)
