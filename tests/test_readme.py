"""README's first two commands are the product's front door; keep them true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_readme_starts_with_a_run_command_and_a_test_command():
    run, test = readme_commands()[:2]
    assert "footnote serve" in run
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test = readme_commands()[1].strip()
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test in ci_lines


def test_every_setting_is_documented():
    from service.settings import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"FOOTNOTE_{name.upper()}" for name in Settings.model_fields
               if name not in ("openai_api_key", "openai_base_url") and f"FOOTNOTE_{name.upper()}" not in readme]
    assert not missing, f"README lacks {missing}"
