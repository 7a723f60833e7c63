"""Settings: what the operator configures binds what requests may do."""

import pytest
from pydantic import ValidationError

from service.settings import Settings


@pytest.mark.parametrize("llm, allowed, expected", [
    ("extractive", "", ["extractive"]),
    ("embedded", "", ["embedded", "extractive"]),
    ("openai", "embedded", ["openai", "embedded"]),  # the default backend is always allowed
    ("extractive", " openai , extractive ,", ["extractive", "openai"]),
])
def test_the_allowed_backends_start_with_the_default(llm, allowed, expected):
    settings = Settings(llm=llm, allowed_backends=allowed, openai_api_key=None, openai_base_url=None)
    assert settings.allowed_backend_list == expected


def test_auto_allows_what_it_resolves_to():
    assert Settings(llm="auto", openai_base_url="http://127.0.0.1:1/v1").allowed_backend_list == ["openai", "extractive"]
    assert Settings(llm="auto", openai_api_key=None, openai_base_url=None).allowed_backend_list == ["embedded", "extractive"]


def test_an_unknown_allowed_backend_is_refused_at_start():
    with pytest.raises(ValidationError, match="unknown backend.*gpt-5"):
        Settings(allowed_backends="extractive,gpt-5")


@pytest.mark.parametrize("keys", [" , ", ",", "  ,  ,"])
def test_api_keys_made_only_of_separators_refuse_to_start(keys):
    with pytest.raises(ValidationError, match="holds no key"):
        Settings(api_keys=keys)
    assert Settings(api_keys="").api_key_list == [] and Settings(api_keys=" k1 ,").api_key_list == ["k1"]
