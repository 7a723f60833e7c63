"""A model worker with a scripted model, for tests: the real worker protocol loop
(`service.llm.model_worker.serve`) around a fake backend that can be told to die.

    python -m tests.llm.fake_model_worker [--load-delay S] [--fail-load]

The fake quotes the first numbered context sentence of the prompt, cited (always verifiable).
A question containing CRASH makes the process segfault (SIGSEGV, like a fault in native model
code), ABORT makes it abort (SIGABRT), HANG makes it stop answering, SLOW streams one piece
every 0.2 s.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import sys
import time
from collections.abc import Iterator

from service.llm.base import Generation, LLMError
from service.llm.model_worker import _protocol_stream, _Replies, _Requests, serve


class ScriptedModel:
    model = "fake-worker-model"

    def choice_probabilities(self, messages, options) -> dict[str, float]:  # noqa: ANN001
        return {"yes": 0.95, "no": 0.05} if "CRASH" not in messages[-1]["content"] else os.abort()

    def answerability(self, messages) -> float | None:  # noqa: ANN001
        """0.2 for a question with UNANSWERABLE in it, else 0.9; PROBEFAIL is a model error."""
        prompt = messages[-1]["content"]
        if "PROBEFAIL" in prompt:
            raise LLMError("the local model failed while reading the prompt")
        return 0.2 if "UNANSWERABLE" in prompt else 0.9

    def stream(self, messages, *, max_tokens, stop=None) -> Iterator[str | Generation]:  # noqa: ANN001
        prompt = messages[-1]["content"]
        if "CRASH" in prompt:
            ctypes.string_at(0)  # a real invalid read: the kernel sends SIGSEGV
            os.kill(os.getpid(), signal.SIGSEGV)  # in case the read did not fault
        if "ABORT" in prompt:
            os.abort()
        if "HANG" in prompt:
            time.sleep(3600)
        lines = re.findall(r"^\[(\d+)\] (.*)$", prompt, re.M)
        text = f"{lines[0][1].rstrip('.')} [{lines[0][0]}]." if lines else "NOT FOUND"
        pieces = [text[i:i + 12] for i in range(0, len(text), 12)]
        for piece in pieces:
            if "SLOW" in prompt:
                time.sleep(0.2)
            yield piece
        yield Generation(text, self.model, prompt_tokens=len(prompt.split()), completion_tokens=len(pieces))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--load-delay", type=float, default=0.0)
    p.add_argument("--fail-load", action="store_true")
    args = p.parse_args()
    replies = _Replies(_protocol_stream())
    time.sleep(args.load_delay)
    if args.fail_load:
        replies.send({"fatal": "the model file is corrupt"})
        return 3
    replies.send({"ready": {"model": ScriptedModel.model, "extra_buffers": True}})
    serve(ScriptedModel(), _Requests(sys.stdin), replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
