"""`GET /v1/documents` and `GET /v1/documents/{id}`: what can be cited, and the text to show a
cited sentence in (offsets are characters of `text`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.api.auth import bearer_scheme
from service.api.errors import ApiError
from service.api.runtime import runtime_of
from service.api.schemas import DocumentDetail, DocumentList, DocumentSummary, ErrorResponse, SentenceOut
from service.index.store import IndexData

router = APIRouter(tags=["documents"], dependencies=[Depends(bearer_scheme)],
                   responses={401: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})


def _summary(index: IndexData, doc_id: str) -> DocumentSummary:
    entry = index.manifest[doc_id]
    return DocumentSummary(id=doc_id, bytes=entry.size, characters=len(index.texts[doc_id]),
                           sentence_count=entry.count, sha256=entry.sha256)


@router.get("/v1/documents", response_model=DocumentList, summary="List the indexed documents")
async def list_documents(request: Request) -> DocumentList:
    index = runtime_of(request).require_service().index
    return DocumentList(data=[_summary(index, d) for d in sorted(index.manifest)])


@router.get(
    "/v1/documents/{document_id:path}", response_model=DocumentDetail,
    summary="One document's text and its sentences with offsets",
    responses={404: {"model": ErrorResponse, "description": "no document with this id"}},
)
async def get_document(document_id: str, request: Request) -> DocumentDetail:
    index = runtime_of(request).require_service().index
    if document_id not in index.manifest:
        raise ApiError(404, f"no document {document_id!r} (see GET /v1/documents)",
                       code="unknown_document", param="document_id")
    sentences = [SentenceOut(sentence=s.sentence, start=s.start, end=s.end, text=s.text)
                 for s in index.sentences_of(document_id)]
    return DocumentDetail(**_summary(index, document_id).model_dump(), text=index.texts[document_id],
                          sentences=sentences)
