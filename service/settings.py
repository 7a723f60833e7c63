"""All configuration in one place: environment variables `FOOTNOTE_*` read into one object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.llm.registry import EXTRACTIVE, NAMES

DEFAULT_REFUSAL = "The documents do not contain the answer to this question."


class Settings(BaseSettings):
    """Every knob of Footnote. Each field is the env var FOOTNOTE_<NAME> (README lists them)."""

    model_config = SettingsConfigDict(env_prefix="FOOTNOTE_", extra="ignore")

    # Corpus and storage
    docs_dir: Path = Path("seeds")
    data_dir: Path = Path(".footnote")
    # A shared index in PostgreSQL + pgvector (postgresql://…) instead of files in data_dir
    store: str | None = Field(None, pattern=r"^postgres(ql)?://")
    store_schema: str = Field("footnote", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    store_keyword: Literal["bm25", "postgres"] = "bm25"
    store_pool_size: int = Field(4, ge=1, le=100)

    # Retrieval
    top_k: int = Field(8, ge=1, le=100)
    embed_batch_size: int = Field(32, ge=1, le=1024)
    embed_threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 = all cores")
    # Larger files are skipped with a warning: 10 MB is ~140k sentences, ~9 min of embedding on
    # 2 cores and ~0.5 GB of memory while ingesting; a 50 MB file would take hours.
    max_document_bytes: int = Field(10_000_000, ge=1)

    # Answering
    llm: Literal[("auto", *NAMES)] = "auto"  # type: ignore[valid-type]  # the registry's names
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(3, ge=0, le=10)
    llm_max_tokens: int = Field(256, ge=16, le=4096)
    llm_fallback: bool = True
    # Backends a request may choose (`backend`, chat `model`); FOOTNOTE_LLM's is always one.
    # Empty = FOOTNOTE_LLM's plus extractive: a client never loads or calls what was not enabled.
    allowed_backends: str = ""
    context_tokens: int = Field(1200, ge=128)
    # Whole documents up to this many tokens go into the prompt instead of retrieved sentences
    # (their processed prefix is saved and reused: later questions cost only their own tokens)
    document_context_tokens: int = Field(0, ge=0)
    # Packed sentences that open with "he", "they", "this"... bring the sentence before them.
    context_antecedents: bool = False
    model_path: Path | None = None  # a GGUF file to use instead of the assembled default
    llm_threads: int = Field(0, ge=0, description="llama.cpp threads; 0 = all cores")
    llm_context_window: int = Field(4096, ge=512)
    # llama.cpp's extra buffer types (repacked weights, AMX); auto = off where the build has AMX
    llm_extra_buffers: Literal["auto", "on", "off"] = "auto"
    # plain: where weights are repacked, a second copy of the model with plain weights reads the
    # prompts (faster for long ones on the CPUs measured) and the repacked one writes
    llm_prompt_reader: Literal["plain", "same"] = "same"
    llm_state_cache_mb: int = Field(512, ge=0, description="saved prompt states (document prefixes)")
    min_relevance: float = Field(0.25, description="best dense score below which we refuse")
    # The answer check (service/answer/answerability.py): a generative answer whose estimated
    # probability of being right is below the threshold is refused. Higher: refuse more.
    answer_check: bool = False
    # The embedded model's answerable probe (service/llm/answerable_probe.py): a question whose
    # P(answerable), read from the model's hidden state, is below this is refused before the
    # model writes anything. 0 turns it off; models without a fitted probe skip it.
    answerable_threshold: float = Field(0.15, ge=0.0, le=1.0)
    answer_threshold: float = Field(0.3, ge=0.0, le=1.0)
    answer_check_all_signals: bool = False  # compute every signal, weighted or not (fitting)
    refusal_message: str = DEFAULT_REFUSAL

    # OpenAI-compatible backend (standard variable names, as the openai client reads them)
    openai_api_key: str | None = Field(
        None, validation_alias=AliasChoices("FOOTNOTE_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("FOOTNOTE_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )

    # HTTP service
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: str = ""  # comma-separated bearer keys; empty = no auth
    cors_origins: str = ""  # comma-separated origins; "*" for any
    max_question_chars: int = Field(2000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_queue: int = Field(8, ge=0)
    queue_wait_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(120.0, gt=0)
    header_timeout_s: float = Field(10.0, gt=0)  # a client must send a request's headers in this time
    public_url: str = ""  # where browsers reach this service, for links to cited sentences

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Chat frontends only link http(s) addresses (OpenAI's url_citation requires one).
        value = value.strip()
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"FOOTNOTE_PUBLIC_URL must be an http(s) address like "
                             f"https://footnote.example.org, not {value!r}")
        return value

    @property
    def public_base(self) -> str | None:
        """FOOTNOTE_PUBLIC_URL without its trailing slash, or None when unset."""
        return self.public_url.rstrip("/") or None

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("api_keys")
    @classmethod
    def _keys_or_nothing(cls, value: str) -> str:
        # " , " must not read as "no keys": that would turn authentication off by accident.
        if value.strip() and not _names(value):
            raise ValueError("FOOTNOTE_API_KEYS holds no key (only commas and spaces); set keys or leave it empty")
        return value

    @field_validator("allowed_backends")
    @classmethod
    def _known_backends(cls, value: str) -> str:
        unknown = [b for b in _names(value) if b not in NAMES]
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
        return value

    @property
    def allowed_backend_list(self) -> list[str]:
        """The backends a request may choose, the default (FOOTNOTE_LLM, resolved) first."""
        listed = _names(self.allowed_backends) or [EXTRACTIVE]
        return list(dict.fromkeys([self.resolved_backend, *listed]))

    @property
    def resolved_backend(self) -> str:
        """`auto` means: OpenAI-compatible when a key or base URL is configured, else embedded."""
        if self.llm != "auto":
            return self.llm
        return "openai" if (self.openai_api_key or self.openai_base_url) else "embedded"


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]
