"""`WorkerBackend`: the embedded model behind a process boundary, restarted when it dies.

The model runs in a child process (service/llm/model_worker.py) that this class starts and
talks to over pipes, one request at a time. When the child dies — a segfault in native code,
an abort, the OOM killer — the request in flight fails with `LLMCrashed` (a clear message, no
fallback guesswork), a new child is started in the background, and `unavailable()` says so
until it is ready again. The service itself never goes down with it.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import IO, Any

from service.llm.base import ChatMessage, Generation, LLMBusy, LLMCrashed, LLMError, LLMTimeout, drain

log = logging.getLogger("footnote.llm")

_EOF = object()
LOAD_TIMEOUT_S = 300.0  # loading from disk takes seconds; a first read of 1.1 GB from a slow disk more
CANCEL_GRACE_S = 10.0  # how long a cancelled request may take to stop before the worker is killed
RESTART_BACKOFF_S = (0.0, 1.0, 5.0, 30.0)  # after 1, 2, 3, 4+ crashes in a row


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class _Worker:
    """One child process and the thread that reads its replies into a queue."""

    def __init__(self, command: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            text=True, encoding="utf-8", bufsize=1,
        )
        self.replies: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), name="model-worker-reader",
                         daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.replies.put(json.loads(line))
            except ValueError:
                log.warning("model worker said something that is not JSON: %.200s", line)
        self.replies.put(_EOF)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.process.stdin.flush()

    def reply(self, timeout: float) -> Any:
        """The next reply, `_EOF` once the child is gone, or queue.Empty after `timeout`."""
        return self.replies.get(timeout=timeout)

    def exit_description(self, wait_s: float = 5.0) -> str:
        try:
            return describe_exit(self.process.wait(timeout=wait_s))
        except subprocess.TimeoutExpired:
            return describe_exit(None)

    def stop(self, grace_s: float = 2.0) -> None:
        """Close its stdin (the worker exits by itself when idle), then kill what is left."""
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout=grace_s)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            log.error("model worker %d did not exit after SIGKILL", self.process.pid)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass


class WorkerBackend:
    """`LLMBackend` over a model worker process; one generation at a time."""

    name = "embedded"

    def __init__(self, command: Sequence[str], *, model: str, queue_wait_s: float, timeout_s: float,
                 load_timeout_s: float = LOAD_TIMEOUT_S) -> None:
        self.model = model
        self.command = list(command)
        self._queue_wait_s = queue_wait_s
        self._timeout_s = timeout_s
        self._load_timeout_s = load_timeout_s
        # A semaphore, not a Lock: a streaming response may be resumed and closed by a
        # different worker thread than the one that started it.
        self._slot = threading.Semaphore(1)
        self._state_lock = threading.Lock()
        self._worker: _Worker | None = None
        self._ready = threading.Event()
        self._problem: str | None = "the embedded model is starting"
        self._next_id = 0
        self.restarts = 0
        self._crashes_in_a_row = 0
        self.extra_buffers: bool | None = None
        self.plain_reader: bool | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and wait until its model is loaded; LLMError if it cannot load."""
        self._spawn()

    def close(self) -> None:
        with self._state_lock:
            worker, self._worker = self._worker, None
            self._ready.clear()
            self._problem = "the embedded model was shut down"
        if worker:
            worker.stop()

    def unavailable(self) -> str | None:
        """Why the model cannot answer right now (restarting, failed), or None when it can."""
        return None if self._ready.is_set() else self._problem

    @property
    def pid(self) -> int | None:
        worker = self._worker
        return worker.process.pid if worker else None

    def _spawn(self) -> None:
        worker = _Worker(self.command)
        try:
            first = worker.reply(timeout=self._load_timeout_s)
        except queue.Empty:
            worker.kill()
            self._problem = f"the embedded model did not load within {self._load_timeout_s:g} s"
            raise LLMError(self._problem) from None
        if first is _EOF or "ready" not in first:
            detail = first.get("fatal") if isinstance(first, dict) else None
            reason = detail or f"the model process {worker.exit_description()} while loading"
            worker.kill()
            self._problem = f"the embedded model could not start: {reason}"
            raise LLMError(self._problem)
        self.extra_buffers = first["ready"].get("extra_buffers")
        self.plain_reader = first["ready"].get("plain_reader")
        with self._state_lock:
            self._worker = worker
            self._problem = None
            self._ready.set()
        log.info("model worker %d ready (%s)", worker.process.pid, self.model)

    def _restart_after(self, worker: _Worker, why: str) -> None:
        """Replace a dead or stuck worker, in the background; requests wait for the new one."""
        with self._state_lock:
            if self._worker is not worker:
                return  # someone else already replaced it
            self._worker = None
            self._ready.clear()
            self._problem = f"the embedded model process {why} and is being restarted"
        worker.kill()
        self._crashes_in_a_row += 1
        threading.Thread(target=self._restart_loop, name="model-worker-restart", daemon=True).start()

    def _restart_loop(self) -> None:
        while True:
            step = min(self._crashes_in_a_row, len(RESTART_BACKOFF_S)) - 1
            time.sleep(RESTART_BACKOFF_S[max(step, 0)])
            try:
                self._spawn()
            except LLMError as exc:
                log.error("restarting the model worker failed: %s", exc)
                self._crashes_in_a_row += 1
                with self._state_lock:
                    self._problem = f"{exc}; retrying"
                continue
            self.restarts += 1
            return

    # -- generation ------------------------------------------------------------------------

    def generate(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Generation:
        return drain(self.stream(messages, max_tokens=max_tokens, stop=stop))

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str | Generation]:
        # The slot is taken on the first next() and released in `finally`, which also runs
        # when the consumer closes the generator early (a disconnected HTTP client).
        deadline = time.monotonic() + self._queue_wait_s
        if not self._slot.acquire(timeout=self._queue_wait_s):
            raise LLMBusy("The local model is busy with other questions; please retry shortly.")
        try:
            worker = self._wait_for_worker(deadline)
            generation = yield from self._run(worker, messages, max_tokens, stop)
        finally:
            self._slot.release()
        yield generation  # after releasing, so a consumer that stops here holds nothing

    def choice_probabilities(self, messages: list[ChatMessage], options: Sequence[str]) -> dict[str, float]:
        reply = self._ask({"op": "choices", "messages": list(messages), "options": list(options)},
                          "probabilities", "the local model could not score")
        return {str(k): float(v) for k, v in reply.items()}

    def answerability(self, messages: list[ChatMessage]) -> float | None:
        reply = self._ask({"op": "answerability", "messages": list(messages)}, "answerable",
                          "the local model could not read the prompt")
        return None if reply is None else float(reply)

    def _ask(self, request: dict[str, Any], answer_key: str, failure: str) -> Any:
        """One request that is answered by a single reply (no stream): its `answer_key` value."""
        deadline = time.monotonic() + self._queue_wait_s
        if not self._slot.acquire(timeout=self._queue_wait_s):
            raise LLMBusy("The local model is busy with other questions; please retry shortly.")
        try:
            worker = self._wait_for_worker(deadline)
            self._next_id += 1
            request_id = self._next_id
            try:
                worker.send({**request, "id": request_id})
            except OSError:
                raise self._crashed(worker) from None
            while True:
                try:
                    reply = worker.reply(timeout=self._silence_limit())
                except queue.Empty:
                    self._restart_after(worker, "stopped responding")
                    raise LLMTimeout("The local model did not answer in time; it is being restarted.") from None
                if reply is _EOF:
                    raise self._crashed(worker)
                if reply.get("id") != request_id:
                    continue
                if answer_key in reply:
                    return reply[answer_key]
                raise LLMError(reply.get("error", {}).get("message", failure))
        finally:
            self._slot.release()

    def _wait_for_worker(self, deadline: float) -> _Worker:
        if not self._ready.wait(timeout=max(0.0, deadline - time.monotonic())):
            raise LLMCrashed(f"{self._problem or 'the embedded model is not ready'}; "
                             "please retry in a few seconds.")
        worker = self._worker
        if worker is None:  # closed, or died between the event and here
            raise LLMCrashed(f"{self._problem or 'the embedded model is not ready'}; please retry.")
        return worker

    def _run(self, worker: _Worker, messages: list[ChatMessage], max_tokens: int,
             stop: list[str] | None) -> Generator[str, None, Generation]:
        self._next_id += 1
        request_id = self._next_id
        try:
            worker.send({"op": "generate", "id": request_id, "messages": list(messages),
                         "max_tokens": max_tokens, "stop": stop or []})
        except OSError:
            raise self._crashed(worker) from None
        silence_limit = self._silence_limit()
        finished = False
        try:
            while True:
                try:
                    reply = worker.reply(timeout=silence_limit)
                except queue.Empty:
                    self._restart_after(worker, f"stopped responding for {silence_limit:g} s")
                    finished = True
                    raise LLMTimeout(f"The local model did not finish within {self._timeout_s:g} s; "
                                     "it is being restarted.") from None
                if reply is _EOF:
                    finished = True
                    raise self._crashed(worker)
                if reply.get("id") != request_id:
                    continue  # the tail of an earlier, cancelled request
                if "delta" in reply:
                    yield reply["delta"]
                elif "done" in reply:
                    finished = True
                    self._crashes_in_a_row = 0
                    return Generation(**reply["done"])
                elif "error" in reply:
                    finished = True
                    error = reply["error"]
                    raise (LLMTimeout if error.get("kind") == "timeout" else LLMError)(error["message"])
                elif "cancelled" in reply:
                    finished = True
                    raise LLMError("The generation was cancelled.")
        finally:
            if not finished:  # the consumer went away mid-answer: stop the worker's generation
                self._cancel(worker, request_id)

    def _silence_limit(self) -> float:
        """The worker enforces the generation timeout itself; this is the backstop for a
        worker that hangs in native code and says nothing at all."""
        return self._timeout_s + 30.0

    def _cancel(self, worker: _Worker, request_id: int) -> None:
        try:
            worker.send({"op": "cancel", "id": request_id})
        except OSError:
            self._crashed(worker)
            return
        until = time.monotonic() + CANCEL_GRACE_S
        while (left := until - time.monotonic()) > 0:
            try:
                reply = worker.reply(timeout=left)
            except queue.Empty:
                break
            if reply is _EOF:
                self._crashed(worker)
                return
            if reply.get("id") == request_id and ("done" in reply or "error" in reply or "cancelled" in reply):
                return
        self._restart_after(worker, f"did not stop within {CANCEL_GRACE_S:g} s of a cancel")

    def _crashed(self, worker: _Worker) -> LLMCrashed:
        why = worker.exit_description()
        log.error("the model worker %d %s; restarting it", worker.process.pid, why)
        self._restart_after(worker, why)
        return LLMCrashed(f"The embedded model process {why} and is being restarted; "
                          "please retry in a few seconds.")
