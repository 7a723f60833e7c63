"""Re-recording helper (not used by the tests): one OpenAI-compatible address in front of two
llama.cpp servers running the same model, so that recording is fast.

llama.cpp's server keeps one prompt in its cache. Footnote alternates two prompts per question
(the answer, then the answer check), which would evict each other and make every request
re-read ~1,000 tokens. Answers go to one server and checks (the requests that ask for
`logprobs`; that server needs `--logits_all true`) to the other, so each keeps its own prefix.
The recorded traffic is what Footnote sent and what llama.cpp answered; the split is invisible.

    python tests/cassettes/split_proxy.py --port 8765 --answers http://127.0.0.1:8766 --checks http://127.0.0.1:8767
"""

from __future__ import annotations

import argparse
import json

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(answers: str, checks: str) -> Starlette:
    client = httpx.AsyncClient(timeout=600)

    async def forward(request: Request) -> Response:
        body = await request.body()
        wants_logprobs = bool(body) and bool(json.loads(body).get("logprobs"))
        target = (checks if wants_logprobs else answers) + request.url.path
        upstream = await client.send(
            client.build_request(request.method, target, content=body,
                                 headers={"content-type": request.headers.get("content-type", "application/json")}),
            stream=True)
        headers = {"content-type": upstream.headers.get("content-type", "application/json")}
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                                 background=None)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--answers", default="http://127.0.0.1:8766")
    p.add_argument("--checks", default="http://127.0.0.1:8767")
    args = p.parse_args()
    uvicorn.run(build(args.answers, args.checks), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
