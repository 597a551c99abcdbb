"""Configuration: defaults, overrides, and a README that documents every variable."""

from __future__ import annotations

from pathlib import Path

from media_pipeline.settings import SETTINGS, export_defaults, load_settings
from media_pipeline_tests.conftest import REPO


def test_defaults_live_under_the_home_folder(tmp_path):
    settings = load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/media_pipeline.db"
    assert settings.artifact_root == tmp_path / "artifacts"
    assert settings.watch_dirs == (tmp_path / "watch",)
    assert settings.media_roots == (tmp_path / "media", tmp_path / "watch")  # the watch folders always
    assert settings.ui_port == 3000 and settings.api_port == 8000


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


def test_export_defaults_fills_only_unset_variables(tmp_path):
    env = {"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_UI_PORT": "4000"}
    export_defaults(env)
    assert env["MEDIA_PIPELINE_UI_PORT"] == "4000"
    assert env["MEDIA_PIPELINE_ARTIFACT_ROOT"] == str(Path(tmp_path) / "artifacts")
    assert {s.name for s in SETTINGS} <= set(env)


def test_readme_documents_every_variable():
    readme = (REPO / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme, setting.name


def test_repo_dagster_yaml_is_the_packaged_instance_config():
    assert (REPO / "dagster.yaml").resolve() == (REPO / "media_pipeline" / "dagster_home" / "dagster.yaml").resolve()
