"""The package as installed: importing it changes nothing; its prompts travel inside it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import service
from service.answer import prompts

ROOT = Path(__file__).resolve().parents[1]


def test_importing_service_leaves_the_environment_alone():
    code = ("import os; before = dict(os.environ); import service, service.api.app, service.cli.main; "
            "import json; print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert json.loads(out) == []


def test_a_wheel_carries_the_prompts_and_the_page(tmp_path):
    """A non-editable install reads prompts from inside the package (service/prompts/)."""
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "NOTICE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("footnote-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"service/prompts/{p.name}" for p in prompts.DEFAULT_DIR.iterdir() if p.suffix in (".txt", ".json")}
    assert shipped and shipped <= names
    assert "service/api/static/index.html" in names
    assert "service/index/pg_schema.sql" in names  # the Postgres store creates its tables from it
    assert prompts.DEFAULT_DIR == Path(service.__file__).parent / "prompts"
