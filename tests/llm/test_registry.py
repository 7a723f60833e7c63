"""service/llm/registry.py: the one list of backends, and what derives from it."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from service.api.schemas import AskRequest
from service.cli.main import build_parser
from service.container import Container
from service.llm import registry
from service.llm.registry import UnknownBackend
from service.settings import Settings


def test_settings_schema_and_cli_accept_exactly_the_registry_names():
    assert set(typing.get_args(Settings.model_fields["llm"].annotation)) == {"auto", *registry.NAMES}
    for name in registry.NAMES:
        assert Settings(llm=name).llm == name
        assert AskRequest(question="q", backend=name).backend == name
        assert build_parser().parse_args(["ask", "q", "--backend", name]).backend == name
    with pytest.raises(ValidationError):
        AskRequest(question="q", backend="sofia")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ask", "q", "--backend", "sofia"])


def test_only_the_extractive_backend_runs_no_model():
    assert [n for n in registry.NAMES if not registry.spec(n).generative] == [registry.EXTRACTIVE]


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(UnknownBackend, match="choose one of embedded, openai, extractive"):
        registry.spec("sofia")
    with pytest.raises(UnknownBackend, match="runs no model"):
        registry.create(registry.EXTRACTIVE, Settings())


def test_backends_are_cached_per_container_not_per_name():
    first = Container(Settings(llm="openai", llm_model="model-a", openai_base_url="http://127.0.0.1:9"))
    second = Container(Settings(llm="openai", llm_model="model-b", openai_base_url="http://127.0.0.1:9"))
    assert first.backend("openai") is first.backend("openai")
    assert first.backend("openai").model == "model-a" and second.backend("openai").model == "model-b"
