"""Property-based tests from the OpenAPI schema (schemathesis): no 5xx, and every response
(status, content type, headers, body) is what the schema says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import build_app

CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance, schemathesis.checks.negative_data_rejection]


# The schema needs no index, so it is read at import; the requests go to `asgi_app`.
# (schemathesis.pytest.from_fixture would be the natural way, but it breaks on pytest 9.)
KEY = "schema-test-key"
RAW = create_app(Settings(llm="extractive", max_question_chars=2000)).openapi()
schema = schemathesis.openapi.from_dict(RAW)


@pytest.fixture(scope="module")
def asgi_app(seed_retriever, api_settings):
    # Called in-process; generative backends are answered by a quick fake model.
    return build_app(seed_retriever, api_settings.model_copy(update={"api_keys": KEY}))


def test_the_schema_documents_the_limits_and_errors():
    raw = RAW
    ask = raw["paths"]["/v1/ask"]["post"]
    assert raw["components"]["schemas"]["AskRequest"]["properties"]["question"]["maxLength"] == 2000
    assert {"401", "404", "413", "422", "429", "503", "504"} <= set(ask["responses"])
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    assert "examples" in raw["components"]["schemas"]["ChatCompletionRequest"]
    assert "ChatCompletionChunk" in raw["components"]["schemas"]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, asgi_app):
    case.call_and_validate(app=asgi_app, checks=CHECKS, headers={"Authorization": f"Bearer {KEY}"})
