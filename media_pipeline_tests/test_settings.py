"""Configuration: defaults, overrides, one typed model validating each variable once, and a README
table that is the model's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from media_pipeline.settings import VARIABLES, SettingsError, load_settings, markdown_table
from media_pipeline_tests.conftest import REPO


def test_defaults_live_under_the_home_folder(tmp_path):
    settings = load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/media_pipeline.db"
    assert settings.artifact_root == tmp_path / "artifacts"
    assert settings.watch_dirs == (tmp_path / "watch",)
    assert settings.media_roots == (tmp_path / "media", tmp_path / "watch")  # the watch folders always
    assert settings.ui_port == 3000 and settings.api_port == 8000
    assert settings.dagster_instance_home == tmp_path / "dagster"


def test_overrides_and_path_lists(tmp_path):
    env = {
        "MEDIA_PIPELINE_HOME": str(tmp_path),
        "MEDIA_PIPELINE_WATCH_DIRS": f"{tmp_path}/a:{tmp_path}/b",
        "MEDIA_PIPELINE_FFMPEG_CONCURRENCY": "0",
        "MEDIA_PIPELINE_CORS_ORIGINS": "http://a.example, http://b.example",
    }
    settings = load_settings(env)
    assert settings.watch_dirs == (tmp_path / "a", tmp_path / "b")
    assert settings.ffmpeg_concurrency == 1  # never zero workers
    assert settings.cors_origins == ("http://a.example", "http://b.example")


def test_empty_means_the_default_but_empty_watch_dirs_means_none(tmp_path):
    settings = load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_UI_PORT": ""})
    assert settings.ui_port == 3000
    settings = load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_WATCH_DIRS": ""})
    assert settings.watch_dirs == ()
    assert settings.media_roots == (tmp_path / "media",)


def test_a_given_mapping_is_read_instead_of_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIA_PIPELINE_UI_PORT", "4321")
    assert load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)}).ui_port == 3000
    assert load_settings().ui_port == 4321


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("MEDIA_PIPELINE_UI_PORT", "abc", "a port number from 1 to 65535"),  # int
        ("MEDIA_PIPELINE_API_PORT", "70000", "a port number from 1 to 65535"),
        ("MEDIA_PIPELINE_MAX_UPLOAD_BYTES", "-5", "a positive whole number"),
        ("MEDIA_PIPELINE_SETTLE_SECONDS", "soon", "a number of seconds, 0 or more"),
        ("MEDIA_PIPELINE_EDL_RATE", "fast", "a frame rate such as 24, 25, 23.976, 29.97 or 30000/1001"),  # rate
        ("MEDIA_PIPELINE_SLIDESHOW_FPS", "0", "a frame rate such as 24, 25, 23.976, 29.97 or 30000/1001"),
        ("MEDIA_PIPELINE_API_URL", "ftp://files.example", "empty or an http(s) URL"),  # URL
        ("MEDIA_PIPELINE_DATABASE_URL", "not a url", "a SQLAlchemy URL"),
        ("MEDIA_PIPELINE_DAGSTER_POSTGRES_URL", "sqlite:///x.db", "empty or a Postgres URL"),
        ("MEDIA_PIPELINE_SLIDESHOW_PRESET", "quick", "an x264 preset: ultrafast, superfast"),  # enum
        ("MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE", "maybe", "true or false"),
        ("MEDIA_PIPELINE_SLIDESHOW_RESOLUTION", "big", "WIDTHxHEIGHT"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(tmp_path, name, value, accepts):
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), name: value})
    message = str(caught.value)
    assert message.startswith(f"{name} must be {accepts}"), message
    assert message.endswith(f"not {value!r}"), message


def test_a_path_list_takes_any_folders_and_resolves_them(tmp_path):
    # A path list cannot be malformed (any text names folders); it is split and made absolute.
    settings = load_settings(
        {"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_MEDIA_ROOTS": f"{tmp_path}/m/../n{os.pathsep} "}
    )
    assert settings.media_roots == (tmp_path / "n", tmp_path / "watch")


def test_every_bad_variable_is_named_at_once(tmp_path):
    with pytest.raises(SettingsError, match=r"MEDIA_PIPELINE_UI_PORT .*; MEDIA_PIPELINE_FETCH_TIMEOUT"):
        load_settings(
            {"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_UI_PORT": "x", "MEDIA_PIPELINE_FETCH_TIMEOUT": "0"}
        )


def test_environment_round_trips(tmp_path):
    settings = load_settings(
        {
            "MEDIA_PIPELINE_HOME": str(tmp_path),
            "MEDIA_PIPELINE_CORS_ORIGINS": "http://a.example,http://b.example",
            "MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE": "1",
            "MEDIA_PIPELINE_WATCH_DIRS": "",
        }
    )
    env = settings.environment()
    assert set(env) == set(VARIABLES) - {"DAGSTER_HOME"}
    assert load_settings(env) == settings


def test_importing_the_code_location_writes_no_environment_variable(tmp_path):
    script = (
        "import os; before = dict(os.environ); import media_pipeline.definitions; "
        "added = sorted(set(os.environ) - set(before)); assert not added, added"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "MEDIA_PIPELINE_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_module_reads_the_environment_but_the_settings():
    readers = []
    for folder in ("media_pipeline", "api"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text()
            if path.name != "settings.py" and ("os.environ.get(" in text or "os.getenv(" in text):
                readers.append(str(path.relative_to(REPO)))
    assert not readers, readers


def test_readme_table_is_the_model():
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "regenerate it: python -m media_pipeline.settings"
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
    assert rows == list(VARIABLES)  # each variable once, no row the model does not have


def test_repo_dagster_yaml_is_the_packaged_instance_config():
    assert (REPO / "dagster.yaml").resolve() == (REPO / "media_pipeline" / "dagster_home" / "dagster.yaml").resolve()


def test_path_settings_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == Path(tmp_path, ".media_pipeline")
    assert settings.artifact_root.is_absolute()
