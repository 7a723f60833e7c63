"""Request and response bodies of the HTTP API, with examples for the OpenAPI page (/docs).

The answer object itself is `service.answer.models.Answer`, shared with the CLI and the evals.
Chat bodies follow OpenAI's Chat Completions API; Footnote's additions are marked as such.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from service.answer.models import Answer, Citation
from service.llm.registry import NAMES

Backend = Literal[NAMES]  # type: ignore[valid-type]  # the registry's names


def _valid_unicode(value: str) -> str:
    """JSON can carry a lone surrogate (`"\\ud83d"`); no tokenizer, file name or UTF-8 reply can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"character {exc.start} is an unpaired surrogate (\\u{ord(value[exc.start]):04x}); "
                         "send valid Unicode") from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]

EXAMPLE_QUESTION = "How many countries pledged to ensure Ukraine's security?"
EXAMPLE_URL = "http://127.0.0.1:8000/documents/000_f586ed492cfdf968.txt?s=1"
EXAMPLE_CITATION = {
    "n": 1,
    "document": "000_f586ed492cfdf968.txt",
    "sentence": 1,
    "start": 0,
    "end": 123,
    "text": "French President Emmanuel Macron said the 26 countries had pledged to ensure "
            "Ukraine's security after the conflict ended.",
}

EXAMPLE_SOURCE = {
    "source": {"id": "000_f586ed492cfdf968.txt#s1", "name": "000_f586….txt · sentence 1", "url": EXAMPLE_URL},
    "document": [EXAMPLE_CITATION["text"]],
    "metadata": [{"source": EXAMPLE_URL, "name": "000_f586….txt · sentence 1", "source_url": EXAMPLE_URL,
                  "document": "000_f586ed492cfdf968.txt", "sentence": 1, "n": 1, "external": True}],
}


# ---- errors --------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str = Field(description="what went wrong, in words a person can act on")
    type: str = Field(description="invalid_request_error | rate_limit_error | server_error")
    code: str | None = Field(None, description="a stable machine-readable code, e.g. unknown_document")
    param: str | None = Field(None, description="the request field at fault, if any")


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": {
        "message": "unknown document id(s): missing.txt", "type": "invalid_request_error",
        "code": "unknown_document", "param": "documents"}}]})

    error: ErrorDetail


# ---- /v1/ask ---------------------------------------------------------------------------------


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": EXAMPLE_QUESTION},
        {"question": "Who will send troops to Ukraine?", "top_k": 5, "backend": "extractive", "stream": True},
    ]})

    question: Text = Field(
        min_length=1,
        description="the question; not blank, at most FOOTNOTE_MAX_QUESTION_CHARS characters",
        json_schema_extra={"pattern": r"\S"},
    )
    # strict: a JSON true or "5" is the client's mistake, not 1 or 5 (pydantic's lax mode would take them)
    top_k: int | None = Field(None, ge=1, le=100, strict=True,
                              description="sentences to retrieve (default FOOTNOTE_TOP_K)")
    documents: list[Text] | None = Field(
        None, min_length=1, max_length=1000,
        description="answer only from these document ids (see GET /v1/documents)",
    )
    backend: Backend | None = Field(None, description="answer with this backend (default FOOTNOTE_LLM)")
    stream: bool = Field(False, description="send Server-Sent Events (as does `Accept: text/event-stream`)")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty")
        return value.strip()


class DeltaEvent(BaseModel):
    """`data` of an SSE `delta` event: the next piece of verified answer text."""

    text: str


def sse_event(component: str, name: str | None = None) -> dict:
    """The schema of one Server-Sent Event whose `data` is the JSON of `component`."""
    properties: dict = {"data": {"type": "string", "contentMediaType": "application/json",
                                 "contentSchema": {"$ref": f"#/components/schemas/{component}"}}}
    if name:
        properties["event"] = {"const": name}
    return {"type": "object", "properties": properties, "required": ["data", *(["event"] if name else [])]}


ASK_STREAM = {"oneOf": [sse_event("Citation", "citation"), sse_event("DeltaEvent", "delta"),
                        sse_event("Answer", "done"), sse_event("ErrorResponse", "error")]}


# ---- /v1/chat/completions --------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="only `text` parts are read; others are ignored")
    text: Text | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body. Sampling parameters (temperature, top_p, max_tokens, stop, seed,
    tools, ...) are accepted and ignored: answers are greedy and verified sentence by sentence."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "footnote", "messages": [{"role": "user", "content": EXAMPLE_QUESTION}]},
        {"model": "footnote", "stream": True, "messages": [
            {"role": "user", "content": "What did Germany say about military commitments?"},
            {"role": "assistant", "content": "Germany said it would only decide when conditions were right [1]."},
            {"role": "user", "content": "And Bulgaria?"},
        ]},
    ]})

    model: Text = Field(description="an id from GET /v1/models: `footnote` or `footnote-<backend>`")
    messages: list[ChatMessageIn] = Field(
        min_length=1, description="the conversation; the last user message is the question")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, description="only one choice is supported",
                          json_schema_extra={"minimum": 1, "maximum": 1})
    # Footnote's additions (the openai client sends them with `extra_body`)
    top_k: int | None = Field(None, ge=1, le=100, strict=True, description="Footnote: sentences to retrieve")
    documents: list[Text] | None = Field(
        None, min_length=1, max_length=1000, description="Footnote: answer only from these document ids")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only one choice (n=1) is supported")
        return value


class UrlCitationSpan(BaseModel):
    start_index: int = Field(description="where the cited claim starts in the content (a Python string index)")
    end_index: int = Field(description="where it ends: the claim is content[start_index:end_index]")
    url: str = Field(description="the cited sentence on Footnote's page")
    title: str = Field(description="document and sentence number")


class UrlCitation(BaseModel):
    """OpenAI's `url_citation` annotation: one per [n] marker, spanning the claim it ends."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitationSpan


class SourceInfo(BaseModel):
    id: str = Field(description="`<document>#s<sentence>`")
    name: str = Field(description="e.g. `000_f586….txt · sentence 9`")
    url: str


class SourceMetadata(BaseModel):
    source: str = Field(description="the sentence's URL: unique per citation (Open WebUI merges sources by it)")
    name: str
    source_url: str
    document: str
    sentence: int
    n: int = Field(description="the [n] marker this source stands for")
    external: bool = Field(True, description="makes Open WebUI 0.12 show `name` rather than the URL")


class ChatSource(BaseModel):
    """A source as Open WebUI reads it: `document` and `metadata` are parallel lists (one
    entry here: the quoted sentence)."""

    source: SourceInfo
    document: list[str]
    metadata: list[SourceMetadata]


class SourceEvent(BaseModel):
    """Open WebUI's stream event: a chunk carrying one shows its `data` as a source."""

    type: Literal["source"] = "source"
    data: ChatSource


class LinkedCitation(Citation):
    url: str = Field(description="the sentence highlighted on Footnote's page")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    annotations: list[UrlCitation] = Field(default_factory=list)


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class FootnoteInfo(BaseModel):
    """Footnote's addition: how the answer came about."""

    question: str = Field(description="the standalone question answered (a follow-up rewritten)")
    answerable: bool
    backend: str
    model: str
    warnings: list[str] = Field(default_factory=list)
    citations: list[LinkedCitation] = Field(
        default_factory=list, description="the sources of the [n] markers: document, sentence, offsets, "
                                          "quoted text and a link")


LEGACY_CITATIONS = ("Deprecated: the same objects as `footnote.citations` (without `url`); kept until "
                    "Footnote 0.3, then removed. Other providers use a top-level `citations` for URL strings.")


class ChatCompletion(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "chatcmpl-7f3c", "object": "chat.completion", "created": 1767225600, "model": "footnote",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
            "role": "assistant", "content": "26 countries pledged to ensure Ukraine's security [1].",
            "annotations": [{"type": "url_citation", "url_citation": {
                "start_index": 0, "end_index": 54, "url": EXAMPLE_URL, "title": "000_f586….txt · sentence 1"}}]}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "sources": [EXAMPLE_SOURCE],
        "citations": [EXAMPLE_CITATION],
        "footnote": {"question": EXAMPLE_QUESTION, "answerable": True, "backend": "extractive",
                     "model": "extractive", "warnings": [], "citations": [{**EXAMPLE_CITATION, "url": EXAMPLE_URL}]},
    }]})

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    sources: list[ChatSource] = Field(description="Open WebUI's sources: one per [n] marker, in order")
    citations: list[Citation] = Field(description=LEGACY_CITATIONS, deprecated=True)
    footnote: FootnoteInfo


def _without(data: dict, names: tuple[str, ...]) -> dict:
    return {k: v for k, v in data.items() if k not in names or v is not None}


class ChunkDelta(BaseModel):
    """Carries only what changed: `role` on the first chunk, `content` after (with `annotations`
    when it has markers), nothing on a source chunk and at the end."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    annotations: list[UrlCitation] | None = Field(
        None, description="url_citation for each [n] in this content (indices into the whole content)")

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict:
        return _without(handler(self), ("role", "content", "annotations"))


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` line of a streamed completion. Before the content that first uses an [n], a
    chunk with an empty delta carries that source as an Open WebUI `event`; content chunks carry
    `annotations`; the chunk with `finish_reason` carries `footnote` (and the deprecated
    `citations`); with `stream_options.include_usage` a last chunk carries `usage`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    event: SourceEvent | None = None
    citations: list[Citation] | None = Field(None, description=LEGACY_CITATIONS, deprecated=True)
    footnote: FootnoteInfo | None = None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict:
        return _without(handler(self), ("usage", "event", "citations", "footnote"))


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "footnote"


class ModelList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"object": "list", "data": [
        {"id": "footnote", "object": "model", "created": 1767225600, "owned_by": "footnote"},
        {"id": "footnote-extractive", "object": "model", "created": 1767225600, "owned_by": "footnote"},
    ]}]})

    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---- /v1/documents ---------------------------------------------------------------------------


class DocumentSummary(BaseModel):
    id: str = Field(description="path relative to the corpus folder")
    bytes: int = Field(description="file size")
    characters: int = Field(description="length of the decoded text (offsets count characters)")
    sentence_count: int
    sha256: str


class DocumentList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"object": "list", "data": [
        {"id": "000_f586ed492cfdf968.txt", "bytes": 2210, "characters": 2208, "sentence_count": 17,
         "sha256": "0f3a..."}]}]})

    object: Literal["list"] = "list"
    data: list[DocumentSummary]


class SentenceOut(BaseModel):
    sentence: int = Field(description="1-based number, as in a citation")
    start: int = Field(description="character offset in `text`")
    end: int
    text: str = Field(description="exactly text[start:end]")


class DocumentDetail(DocumentSummary):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "000_f586ed492cfdf968.txt", "bytes": 2210, "characters": 2208, "sentence_count": 17,
        "sha256": "0f3a...", "text": EXAMPLE_CITATION["text"] + " ...",
        "sentences": [{k: EXAMPLE_CITATION[k] for k in ("sentence", "start", "end", "text")}]}]})

    text: str
    sentences: list[SentenceOut] = Field(description="every sentence with its offsets, in order")


# ---- health ----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class BackendStatus(BaseModel):
    name: str = Field(description="the default backend (FOOTNOTE_LLM resolved)")
    usable: bool
    detail: str = ""


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    documents: int
    sentences: int
    backend: BackendStatus


__all__ = [
    "Answer", "AskRequest", "ChatCompletion", "ChatCompletionChunk", "ChatCompletionRequest",
    "Citation", "DeltaEvent", "DocumentDetail", "DocumentList", "ErrorResponse", "Health",
    "ModelList", "Readiness",
]
