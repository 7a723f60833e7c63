"""The AMX guard: llama.cpp's extra buffer types are turned off where the build has AMX kernels
(their tile instructions fault on some virtual machines that advertise AMX); the weight settings reach the worker."""

from __future__ import annotations

import importlib.util

import pytest

from service.llm.embedded import _model_params_with, build_has_amx, use_extra_buffers

AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | REPACK = 1 |"
PLAIN_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | REPACK = 1 |"


def test_auto_turns_extra_buffers_off_only_for_builds_with_amx():
    assert build_has_amx(AMX_BUILD) and not build_has_amx(PLAIN_BUILD)
    assert use_extra_buffers("auto", AMX_BUILD) is False
    assert use_extra_buffers("auto", PLAIN_BUILD) is True


def test_an_explicit_setting_wins():
    assert use_extra_buffers("on", AMX_BUILD) is True
    assert use_extra_buffers("off", PLAIN_BUILD) is False


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
def test_the_flag_reaches_the_params_llama_cpp_python_loads_with():
    import llama_cpp.llama_cpp as capi

    assert capi.llama_model_default_params().use_extra_bufts is True  # llama.cpp's default
    with _model_params_with(False):
        assert capi.llama_model_default_params().use_extra_bufts is False
    assert capi.llama_model_default_params().use_extra_bufts is True  # restored


def test_the_model_worker_is_started_with_the_weight_settings(tmp_path) -> None:
    from service.llm.embedded import worker_command
    from service.llm.model_worker import parse_args
    from service.settings import Settings

    settings = Settings(llm_extra_buffers="on", llm_prompt_reader="plain")
    args = parse_args(worker_command(tmp_path / "m.gguf", "m", settings)[3:])  # after python -m module
    assert (args.extra_buffers, args.prompt_reader) == ("on", "plain")
    assert parse_args(["--model", "m.gguf"]).prompt_reader == "same"  # one copy unless asked
