"""The embedded backend: a local GGUF model run by llama-cpp-python in a worker process.

`EmbeddedBackend` is the model itself (one generation at a time); it runs inside the model
worker (service/llm/model_worker.py), so native code that crashes takes only the worker down.
It may hold the model twice (`FOOTNOTE_LLM_PROMPT_READER=plain`): llama.cpp's repacked weights
write faster but read long prompts slower than plain ones (on 2 AVX-512 cores, 128 new tokens:
747 vs 551 ms; one token: 30 vs 36 ms), so a second copy with plain weights reads the prompt
and hands its KV state (~14 MB for a 500-token prompt, ~7 ms) to the repacked copy, which
writes. The service talks to it through `WorkerBackend`, which `get_embedded_backend` returns.
Reusing the same `Llama` object is what makes llama.cpp's prefix cache work: a prompt that
starts with the same tokens as the previous one (the shared system message) skips
re-evaluating them.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.llm.answerable_probe import Probe, load_probe
from service.llm.base import ChatMessage, Generation, LLMError, LLMTimeout, drain
from service.llm.layer_tap import LayerTap
from service.llm.model_files import MODEL_FILENAME, ensure_model
from service.llm.prefix_states import PrefixStates, common_prefix, copy_state
from service.llm.worker_client import WorkerBackend
from service.settings import Settings

if TYPE_CHECKING:
    from llama_cpp import Llama

DEFAULT_MODEL_NAME = MODEL_FILENAME.removesuffix(".gguf")


class EmbeddedBackend:
    """`LLMBackend` over a loaded `llama_cpp.Llama`, greedy decoding. Not thread-safe: the model
    worker calls it one request at a time, and `WorkerBackend` is the slot in front of it."""

    name = "embedded"
    extra_buffers = True  # whether llama.cpp's extra buffer types (repacked weights) are in use
    plain_reader = False  # whether a second copy with plain weights reads the prompts

    def __init__(
        self, llm: Llama, *, model: str, timeout_s: float, state_cache_bytes: int = 0,
        probe: Probe | None = None, tap: LayerTap | None = None, reader: Llama | None = None,
    ) -> None:
        self.model = model
        self._llm = llm  # writes the answers
        self._reader = reader or llm  # reads the prompts (the tap, if any, is in its context)
        self._probe = probe if tap is not None else None
        self._tap = tap  # reads a layer's output; installed when there is a probe (or to fit one)
        self.states = PrefixStates(state_cache_bytes)
        self._timeout_s = timeout_s
        self._formatter = _chat_formatter(llm)
        self._special = special_token_pattern(llm)

    def generate(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Generation:
        return drain(self.stream(messages, max_tokens=max_tokens, stop=stop))

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str | Generation]:
        generation = yield from self._stream_text(messages, max_tokens=max_tokens, stop=stop)
        yield generation

    def _stream_text(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None
    ) -> Generator[str, None, Generation]:
        """Yield the deltas; return the final Generation."""
        tokens = self._prompt_tokens(messages)
        prompt_tokens = len(tokens)
        self._check_fits(prompt_tokens)
        if self._reader is self._llm:
            self.states.restore_best(self._llm, tokens)
        else:
            self._hand_over(tokens)
        deadline = time.monotonic() + self._timeout_s
        chunks = self._start(messages, max_tokens=max_tokens, stop=stop)
        text: list[str] = []
        finish_reason: str | None = None
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                delta = choice.get("delta", {}).get("content")
                if delta:
                    text.append(delta)
                    yield delta
                if time.monotonic() > deadline:
                    raise LLMTimeout(
                        f"The local model did not finish within {self._timeout_s:g} s."
                    )
        except LLMError:
            raise
        except Exception as exc:
            raise LLMError(f"The local model failed while generating: {exc}") from exc
        finally:
            chunks.close()  # finish llama's generator before the next request
        self.states.save(self._llm)
        return Generation(
            text="".join(text),
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=self._completion_tokens(prompt_tokens, finish_reason),
        )

    def _hand_over(self, tokens: list[int]) -> None:
        """Read the prompt with the plain-weights copy (unless it already has), then give the
        writer its KV state; llama-cpp-python re-decodes the last token there for the logits."""
        reader, writer = self._reader, self._llm
        if common_prefix(writer.input_ids[: writer.n_tokens], tokens) >= len(tokens) - 1:
            return  # the writer has the prompt already (e.g. asked again)
        if common_prefix(reader.input_ids[: reader.n_tokens], tokens) < len(tokens):
            self._read_tokens(tokens)
        try:
            copy_state(reader, writer)
        except Exception as exc:
            raise LLMError(f"The local model failed while reading the prompt: {exc}") from exc

    def _completion_tokens(self, prompt_tokens: int, finish_reason: str | None) -> int:
        # Stream chunks don't map 1:1 to tokens (the tail is flushed as one chunk), so read
        # the KV position instead: every sampled token was evaluated except the last one,
        # which is the EOS (not counted) unless generation stopped at max_tokens. This
        # matches llama-cpp-python's own usage numbers, except when a caller's stop string
        # ends the answer (one fewer; its usage then retokenizes the text anyway).
        evaluated = self._llm.n_tokens - prompt_tokens
        return max(0, evaluated + (1 if finish_reason == "length" else 0))

    def _start(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None
    ) -> Iterator[dict[str, Any]]:
        try:
            return self._llm.create_chat_completion(  # type: ignore[return-value]
                messages=as_text(messages, self._special),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                stop=stop or [],
                temperature=0.0,  # greedy decoding
                repeat_penalty=1.0,  # quoting source sentences verbatim must not be penalised
                stream=True,
            )
        except Exception as exc:
            raise LLMError(f"The local model could not start generating: {exc}") from exc

    def choice_probabilities(self, messages: list[ChatMessage], options: Sequence[str]) -> dict[str, float]:
        """How likely the reply starts with each option ("yes", "no"), renormalised over them:
        one forward pass over the prompt's new tokens, no sampling."""
        self._read_prompt(messages)
        llm = self._reader
        try:
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()  # noqa: SLF001
        except Exception as exc:
            raise LLMError(f"The local model failed while scoring: {exc}") from exc
        self.states.save(llm)  # keeps the check's rules-and-examples prefix for the next one
        return option_probabilities(logits, {o: self._first_tokens(o) for o in options})

    def answerability(self, messages: list[ChatMessage]) -> float | None:
        """The probe's P(answerable) at the prompt's last token (None without a probe). Leaves
        the whole prompt evaluated, so the answer that follows starts generating at once."""
        if self._probe is None:
            return None
        states = self.hidden_states(messages, self._probe.layers, rows=self._probe.rows)
        if any(layer not in states for layer in self._probe.layers):
            return None
        return self._probe.score(np.concatenate([states[layer] for layer in self._probe.layers]))

    def hidden_states(self, messages: list[ChatMessage], layers: Sequence[int],
                      reply: str = "", rows: int = 1) -> dict[int, np.ndarray]:
        """Each layer's output averaged over the prompt's last `rows` tokens, or with `reply`
        over the last tokens of the prompt followed by that reply (for fitting; {} when no tap
        is installed)."""
        if self._tap is None:
            return {}
        return self._read_prompt(messages, layers, reply, rows)

    def _read_prompt(self, messages: list[ChatMessage], layers: Sequence[int] = (),
                     reply: str = "", rows: int = 1) -> dict[int, np.ndarray]:
        """Read the prompt (followed by `reply`, if any) with the reading copy; see `_read_tokens`."""
        tokens = self._prompt_tokens(messages)
        if reply:
            tokens += self._reader.tokenize(reply.encode("utf-8"), add_bos=False, special=False)
        self._check_fits(len(tokens))
        return self._read_tokens(tokens, layers, rows)

    def _read_tokens(self, tokens: list[int], layers: Sequence[int] = (), rows: int = 1) -> dict[int, np.ndarray]:
        """Evaluate the tokens with the reading copy, resuming from the best saved state and
        decoding at least the last token again so its logits are live; with `layers` (and a
        tap), their outputs averaged over the last `rows` tokens, which are decoded again too
        when a saved state holds them (the same prompt asked again)."""
        llm = self._reader
        done = min(self.states.restore_best(llm, tokens), len(tokens) - (rows if layers else 1))
        done = max(done, 0)
        try:
            llm.n_tokens = done  # eval() drops the KV cells past this point
            if not layers or self._tap is None:
                llm.eval(tokens[done:])
                return {}
            # A block's output holds a row per token of the batch (only the last block keeps
            # just the rows with logits); the tap keeps the last `rows` rows read.
            with self._tap.reading(layers, rows) as tap:
                llm.eval(tokens[done:])
            return tap.vectors
        except Exception as exc:
            raise LLMError(f"The local model failed while reading the prompt: {exc}") from exc

    def _first_tokens(self, option: str) -> set[int]:
        """Token ids a reply starting with `option` may begin with ("yes", "Yes", " yes" ...)."""
        ids = set()
        for variant in {option, option.capitalize(), option.upper(), " " + option, " " + option.capitalize()}:
            pieces = self._llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
            if pieces:
                ids.add(pieces[0])
        return ids

    def _prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt's tokens exactly as the chat handler renders and tokenizes it."""
        messages = as_text(messages, self._special)
        try:
            if self._formatter is None:  # no GGUF template: the raw contents
                text = "\n".join(m["content"] for m in messages)
                return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
            prompt = self._formatter(messages=list(messages)).prompt
            return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        except Exception as exc:  # e.g. the chat template rejects the message roles
            raise LLMError(f"The local model could not format the prompt: {exc}") from exc

    def _check_fits(self, prompt_tokens: int) -> None:
        n_ctx = self._llm.n_ctx()
        if prompt_tokens >= n_ctx:
            raise LLMError(
                f"The prompt is {prompt_tokens} tokens but the local model's context window is "
                f"{n_ctx} (FOOTNOTE_LLM_CONTEXT_WINDOW); ask a shorter question or lower "
                f"FOOTNOTE_CONTEXT_TOKENS."
            )


# A word joiner after the first character: the spelling stays, the special token does not.
_JOINER = "\u2060"


def special_token_pattern(llm: Llama) -> re.Pattern[str] | None:
    """The spellings of the model's control and user-defined tokens ("<|im_end|>", "</s>",
    "<tool_call>"), which llama.cpp turns into those tokens wherever they occur in a prompt."""
    import llama_cpp

    model = llm._model  # noqa: SLF001 - token attributes are exposed only here
    wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    texts = set()
    for token in range(model.n_vocab()):
        if model.token_get_attr(token) & wanted:
            text = model.token_get_text(token)
            if len(text) > 1:
                texts.add(text)
    if not texts:
        return None
    return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))


def as_text(messages: Sequence[ChatMessage], special: re.Pattern[str] | None) -> list[ChatMessage]:
    """Messages whose contents read as text. A question or a document may spell a special
    token (a page about tokenizers quotes "<|endoftext|>"; HTML strikes through with "</s>"):
    as the token itself it would end the prompt's turn or the text there, so a word joiner
    goes after its first character. Roles and the chat template's own tokens are untouched."""
    if special is None:
        return list(messages)
    return [{**m, "content": special.sub(lambda t: t.group(0)[0] + _JOINER + t.group(0)[1:], m["content"])}
            if isinstance(m.get("content"), str) and special.search(m["content"]) else m
            for m in messages]


def option_probabilities(logits: np.ndarray, options: dict[str, set[int]]) -> dict[str, float]:
    """Softmax over the vocabulary, summed per option's first tokens, renormalised."""
    shifted = np.exp(logits - logits.max())
    probs = shifted / shifted.sum()
    mass = {o: float(sum(probs[i] for i in ids)) for o, ids in options.items()}
    total = sum(mass.values())
    return {o: (m / total if total > 0 else 1.0 / len(mass)) for o, m in mass.items()}


def _chat_formatter(llm: Llama) -> Any:
    """The same Jinja formatter llama-cpp-python builds from the GGUF template (for counting)."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template")
    if not template or llm.chat_format != "chat_template.default":
        return None
    model = llm._model  # noqa: SLF001 - llama-cpp-python exposes token text only here
    eos, bos = llm.token_eos(), llm.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


# ---- loading ------------------------------------------------------------------------------


def load_backend(path: str | Path, *, name: str | None, n_ctx: int, threads: int, timeout_s: float,
                 extra_buffers: str = "auto", prompt_reader: str = "same", state_cache_mb: int = 0,
                 use_probe: bool = True, tap: bool = False) -> EmbeddedBackend:
    """Load a GGUF file into an in-process backend (the model worker calls this). With
    `prompt_reader="plain"` and repacked weights, a second copy with plain weights reads prompts."""
    path = Path(path)
    probe = load_probe(path.stem) if use_probe else None
    # The tap is wired in when the context is made; its row size is known once the model is.
    layer_tap = LayerTap(0) if probe is not None or tap else None
    extra = use_extra_buffers(extra_buffers, _system_info())
    two = prompt_reader == "plain" and extra  # with plain weights already, one copy does both
    llm = _open_llama(path, n_ctx=n_ctx, threads=threads, extra_buffers=extra, tap=None if two else layer_tap)
    # The plain copy's weights are mmapped from the same file (page cache, not a second load).
    reader = _open_llama(path, n_ctx=n_ctx, threads=threads, extra_buffers=False, tap=layer_tap) if two else None
    if layer_tap is not None:
        layer_tap.n_embd = llm.n_embd()
    backend = EmbeddedBackend(llm, model=name or path.stem, timeout_s=timeout_s,
                              state_cache_bytes=state_cache_mb * 2**20, probe=probe, tap=layer_tap, reader=reader)
    backend.extra_buffers = extra
    backend.plain_reader = reader is not None
    return backend


def build_has_amx(system_info: str) -> bool:
    """Whether this llama.cpp build carries AMX kernels ("AMX_INT8 = 1" in its system info)."""
    return "AMX_INT8 = 1" in system_info


def use_extra_buffers(setting: str, system_info: str) -> bool:
    """llama.cpp's "extra buffer types" hold repacked weights for faster CPU kernels, AMX's
    among them. AMX tile instructions fault on some virtual machines that advertise AMX (the
    first matrix multiply kills the process), so `auto` turns them off where the build has
    AMX kernels; builds without AMX keep the AVX2/AVX-512 repacking, which is safe and fast."""
    if setting in ("on", "off"):
        return setting == "on"
    return not build_has_amx(system_info)


@contextmanager
def _model_params_with(extra_buffers: bool, tap: LayerTap | None = None) -> Iterator[None]:
    """llama-cpp-python has no argument for `use_extra_bufts` or the eval callback; set them on
    the default params its constructor starts from, for the duration of one load (the worker is
    single-threaded while loading)."""
    import llama_cpp.llama_cpp as capi

    model_defaults, context_defaults = capi.llama_model_default_params, capi.llama_context_default_params

    def model_params():  # noqa: ANN202 - ctypes struct
        p = model_defaults()
        p.use_extra_bufts = extra_buffers
        return p

    def context_params():  # noqa: ANN202 - ctypes struct
        p = context_defaults()
        if tap is not None:
            p.cb_eval = tap.callback
        return p

    capi.llama_model_default_params, capi.llama_context_default_params = model_params, context_params
    try:
        yield
    finally:
        capi.llama_model_default_params, capi.llama_context_default_params = model_defaults, context_defaults


def _system_info() -> str:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMError(
            "The embedded backend needs llama-cpp-python: pip install 'footnote[embedded]'."
        ) from exc
    return llama_cpp.llama_print_system_info().decode(errors="replace")


def _open_llama(path: Path, *, n_ctx: int, threads: int, extra_buffers: bool,
                tap: LayerTap | None = None) -> Llama:
    from llama_cpp import Llama  # (load_backend has checked that llama-cpp-python is installed)

    if not path.is_file():
        raise LLMError(f"The local model file {path} does not exist.")
    threads = threads or os.cpu_count() or 1
    try:
        with _model_params_with(extra_buffers, tap):
            llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                        verbose=False)
    except Exception as exc:  # llama-cpp-python raises ValueError on a bad file
        raise LLMError(f"Could not load the local model {path}: {exc}") from exc
    # Free the model before interpreter teardown; llama-cpp-python's own finaliser runs too
    # late and prints a TypeError traceback at exit.
    atexit.register(llm.close)
    return llm


# ---- one model worker per process ----------------------------------------------------------

_backend: WorkerBackend | None = None
_backend_lock = threading.Lock()


def get_embedded_backend(settings: Settings) -> WorkerBackend:
    """The process-wide embedded backend: the model runs in a worker process, started on the
    first call (seconds; once) and restarted whenever it dies."""
    global _backend
    with _backend_lock:
        if _backend is None:
            path = ensure_model(settings)
            name = DEFAULT_MODEL_NAME if settings.model_path is None else path.stem
            _backend = WorkerBackend(
                worker_command(path, name, settings), model=name,
                queue_wait_s=settings.queue_wait_s, timeout_s=settings.llm_timeout_s)
            _backend.start()
            atexit.register(_backend.close)
        return _backend


def worker_command(path: Path, name: str, settings: Settings) -> list[str]:
    return [sys.executable, "-m", "service.llm.model_worker", "--model", str(path), "--name", name,
            "--n-ctx", str(settings.llm_context_window), "--threads", str(settings.llm_threads),
            "--timeout", str(settings.llm_timeout_s), "--extra-buffers", settings.llm_extra_buffers,
            "--prompt-reader", settings.llm_prompt_reader,
            "--state-cache-mb", str(settings.llm_state_cache_mb)]
