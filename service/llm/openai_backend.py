"""Any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp server) via `openai`.

The client retries 408/409/429/5xx and connection errors with exponential backoff and honours
Retry-After; we set its timeout and retry count from settings and turn what is left into
LLMError/LLMTimeout with a message a person can act on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import openai

from service.llm.base import ChatMessage, Generation, LLMError, LLMTimeout
from service.settings import Settings


class OpenAIBackend:
    name = "openai"

    def __init__(self, settings: Settings, client: openai.OpenAI | None = None) -> None:
        if client is None and not (settings.openai_api_key or settings.openai_base_url):
            # Without either, the client would send questions and documents to api.openai.com:
            # a host the operator never chose.
            raise LLMError("the openai backend is not configured: set OPENAI_BASE_URL (any "
                           "OpenAI-compatible server) or OPENAI_API_KEY (api.openai.com)")
        self.model = settings.llm_model
        self._client = client or openai.OpenAI(
            # A local server needs no key, but the client insists on one.
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )

    def unavailable(self) -> str | None:
        return None  # the server's health shows in each request's errors

    def _errors(self, exc: Exception) -> LLMError:
        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeout(f"the model server did not answer in time ({exc})")
        if isinstance(exc, openai.AuthenticationError):
            return LLMError("the model server rejected the API key (check OPENAI_API_KEY)")
        if isinstance(exc, openai.NotFoundError):
            return LLMError(f"the model server has no model {self.model!r} (check FOOTNOTE_LLM_MODEL)")
        if isinstance(exc, openai.RateLimitError):
            return LLMError("the model server is rate limiting us; retries were exhausted")
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"the model server failed with HTTP {exc.status_code}")
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"cannot reach the model server at {self._client.base_url}")
        return LLMError(f"the model server failed: {exc}")

    def generate(self, messages: list[ChatMessage], *, max_tokens: int,
                 stop: list[str] | None = None) -> Generation:
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0, stop=stop,
            )
        except openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        usage = response.usage
        return Generation(
            text=response.choices[0].message.content or "",
            model=response.model or self.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def answerability(self, messages: list[ChatMessage]) -> float | None:
        return None  # a server's hidden states are out of reach; the answer check still works

    def choice_probabilities(self, messages: list[ChatMessage], options: Sequence[str]) -> dict[str, float]:
        """From the first token's top logprobs; servers that give none count the reply itself."""
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=1, temperature=0, logprobs=True, top_logprobs=10,
            )
        except openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        choice = response.choices[0]
        tops: list[tuple[str, float]] = []
        if choice.logprobs and choice.logprobs.content:
            tops = [(t.token, t.logprob) for t in choice.logprobs.content[0].top_logprobs]
        if not tops:
            tops = [(choice.message.content or "", 0.0)]
        return probabilities_from_top(tops, options)

    def stream(self, messages: list[ChatMessage], *, max_tokens: int,
               stop: list[str] | None = None) -> Iterator[str | Generation]:
        text, model, usage = [], self.model, None
        try:
            stream = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=0, stop=stop,
                stream=True, stream_options={"include_usage": True},
            )
            try:
                for chunk in stream:
                    model = chunk.model or model
                    if chunk.usage:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta.content if choice.delta else None
                        if delta:
                            text.append(delta)
                            yield delta
            finally:
                stream.close()  # stops the server's generation when our consumer goes away
        except openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        yield Generation(
            text="".join(text), model=model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


def probabilities_from_top(tops: Sequence[tuple[str, float]], options: Sequence[str]) -> dict[str, float]:
    """Sum the probability of the top tokens that begin each option, renormalised over the options."""
    mass = dict.fromkeys(options, 0.0)
    for token, logprob in tops:
        word = token.strip().lower()
        for option in options:
            if word and (option.lower().startswith(word) or word.startswith(option.lower())):
                mass[option] += math.exp(logprob)
                break
    total = sum(mass.values())
    return {o: (m / total if total > 0 else 1.0 / len(options)) for o, m in mass.items()}
