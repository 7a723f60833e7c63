"""The model worker: a child process that owns the llama.cpp model and generates on request.

    python -m service.llm.model_worker --model PATH [--name N] [--n-ctx N] [--threads N] ...

Native model code runs only here, so a segfault, an abort or the OOM killer ends this process
and never the HTTP service; `WorkerBackend` (service/llm/worker_client.py) restarts it.

Protocol: JSON lines. Requests on stdin:
    {"op": "generate", "id": 7, "messages": [...], "max_tokens": 64, "stop": [...]}
    {"op": "choices", "id": 8, "messages": [...], "options": ["yes", "no"]}
    {"op": "answerability", "id": 9, "messages": [...]}
    {"op": "cancel", "id": 7}                      stop request 7 (a client went away)
Replies on the protocol stream (the process's original stdout; fd 1 is pointed at stderr so
that anything native code prints cannot corrupt the protocol):
    {"ready": {"model": ..., "extra_buffers": bool, "plain_reader": bool}}   once, when loaded
    {"fatal": "message"}                              the model could not be loaded; exit 3
    {"id": 7, "delta": "text"}                        zero or more
    {"id": 7, "done": {"text", "model", "prompt_tokens", "completion_tokens"}}
    {"id": 7, "error": {"kind": "timeout" | "error", "message": ...}}
    {"id": 7, "cancelled": true}
    {"id": 8, "probabilities": {"yes": 0.8, "no": 0.2}}   the answer to a choices request
    {"id": 9, "answerable": 0.7}                       the probe's score (null: no probe)
Every request ends with exactly one of done, probabilities, answerable, error or cancelled. The worker exits when its
stdin closes (the parent is gone).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

from service.llm.base import Generation, LLMError, LLMTimeout

EXIT_LOAD_FAILED = 3


class _Requests:
    """Reads stdin on a thread: generate requests queue up; a cancel flags the running one."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.pending: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.closed = threading.Event()
        threading.Thread(target=self._read, name="worker-stdin", daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("op") == "cancel":
                self.cancelled.add(int(message["id"]))
            elif message.get("op") in ("generate", "choices", "answerability"):
                self.pending.put(message)
        self.closed.set()  # the parent closed our stdin: finish up and exit
        self.pending.put(None)

    def stop_requested(self, request_id: int) -> bool:
        return self.closed.is_set() or request_id in self.cancelled


class _Replies:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(message, ensure_ascii=False) + "\n")
            self._stream.flush()


def serve(backend: Any, requests: _Requests, replies: _Replies) -> None:
    """Answer requests one at a time until stdin closes."""
    while (request := requests.pending.get()) is not None:
        request_id = int(request["id"])
        if requests.stop_requested(request_id):
            replies.send({"id": request_id, "cancelled": True})
            continue
        if request["op"] in ("choices", "answerability"):
            try:
                if request["op"] == "choices":
                    reply = {"probabilities": backend.choice_probabilities(request["messages"], request["options"])}
                else:
                    reply = {"answerable": backend.answerability(request["messages"])}
                replies.send({"id": request_id, **reply})
            except LLMError as exc:
                replies.send({"id": request_id, "error": {"kind": "error", "message": str(exc)}})
            continue
        stream = backend.stream(request["messages"], max_tokens=int(request["max_tokens"]),
                                stop=request.get("stop") or None)
        try:
            for item in stream:
                if requests.stop_requested(request_id):
                    replies.send({"id": request_id, "cancelled": True})
                    break
                if isinstance(item, Generation):
                    replies.send({"id": request_id, "done": {
                        "text": item.text, "model": item.model, "prompt_tokens": item.prompt_tokens,
                        "completion_tokens": item.completion_tokens}})
                else:
                    replies.send({"id": request_id, "delta": item})
        except LLMTimeout as exc:
            replies.send({"id": request_id, "error": {"kind": "timeout", "message": str(exc)}})
        except LLMError as exc:
            replies.send({"id": request_id, "error": {"kind": "error", "message": str(exc)}})
        finally:
            stream.close()
        requests.cancelled.discard(request_id)


def _protocol_stream() -> IO[str]:
    """Our original stdout for the protocol; fd 1 itself now goes to stderr."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m service.llm.model_worker")
    p.add_argument("--model", required=True, help="the GGUF file")
    p.add_argument("--name", default=None, help="model name reported in answers")
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="longest generation, seconds")
    p.add_argument("--state-cache-mb", type=int, default=0, help="memory for saved prompt states")
    p.add_argument("--extra-buffers", choices=["auto", "on", "off"], default="auto",
                   help="llama.cpp's extra buffer types (weight repacking, AMX); auto = off where "
                        "this build has AMX kernels")
    p.add_argument("--prompt-reader", choices=["plain", "same"], default="same",
                   help="plain: with repacked weights, a second copy of the model with plain weights "
                        "reads the prompts (faster for long ones) and hands the state over")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    replies = _Replies(_protocol_stream())
    from service.llm.embedded import load_backend

    try:
        backend = load_backend(args.model, name=args.name, n_ctx=args.n_ctx, threads=args.threads,
                               timeout_s=args.timeout, extra_buffers=args.extra_buffers,
                               prompt_reader=args.prompt_reader, state_cache_mb=args.state_cache_mb)
    except LLMError as exc:
        replies.send({"fatal": str(exc)})
        return EXIT_LOAD_FAILED
    replies.send({"ready": {"model": backend.model, "extra_buffers": backend.extra_buffers,
                            "plain_reader": backend.plain_reader}})
    serve(backend, _Requests(sys.stdin), replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
