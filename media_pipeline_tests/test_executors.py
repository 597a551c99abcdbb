"""The executor chosen by MEDIA_PIPELINE_EXECUTOR, its host tag, Celery queues, and the refusals
of celery mode with state only one machine sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from media_pipeline import cli
from media_pipeline.platform.executors import FFMPEG_QUEUE, HOST_TAG, executor_for, queue_for
from media_pipeline.platform.job_kinds import CANCEL_REQUESTED, CANCEL_TAG
from media_pipeline.settings import load_settings, shared_state_problems

REPO = Path(__file__).resolve().parents[1]


@dg.op
def hello() -> int:
    return os.getpid()


def tagged_job(mode: str) -> dg.JobDefinition:
    settings = load_settings({"MEDIA_PIPELINE_EXECUTOR": mode}).model_copy(update={"host_id": "render-07"})

    @dg.job(name=f"tagged_{mode}", executor_def=executor_for(settings))
    def tagged() -> None:
        hello()

    return tagged


# Module level, one per mode: Dagster rebuilds a job from its function (in each step process for
# multiprocess) and caches it per function.
def in_process_job() -> dg.JobDefinition:
    return tagged_job("in_process")


def multiprocess_job() -> dg.JobDefinition:
    return tagged_job("multiprocess")


@pytest.mark.parametrize("mode", ["in_process", "multiprocess"])
def test_the_run_records_its_host_and_steps_run_where_the_mode_says(mode: str, tmp_path: Path) -> None:
    assert executor_for(load_settings({})).name == "in_process"  # the default
    job = {"in_process": in_process_job, "multiprocess": multiprocess_job}[mode]
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        dg.execute_job(dg.reconstructable(job), instance=instance) as result,
    ):
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags[HOST_TAG] == "render-07"  # type: ignore[union-attr]
        step_pid = result.output_for_node("hello")
        assert (step_pid == os.getpid()) == (mode == "in_process")  # multiprocess: a process of its own


@pytest.mark.parametrize("mode", ["in_process", "multiprocess"])
def test_a_cancel_asked_while_starting_cancels_the_run_before_its_first_step(mode: str, tmp_path: Path) -> None:
    """The API tags a STARTING run it may not terminate; the executor carries the cancel out."""
    job = {"in_process": in_process_job, "multiprocess": multiprocess_job}[mode]
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        dg.execute_job(
            dg.reconstructable(job), instance=instance, tags={CANCEL_TAG: CANCEL_REQUESTED}, raise_on_error=False
        ) as result,
    ):
        assert not result.success
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.CANCELED  # type: ignore[union-attr]
        events = instance.all_logs(result.run_id)
        assert not [e for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"]
        assert any("Cancel asked for while the run was starting" in (e.message or "") for e in events)


def test_every_area_job_takes_the_executor_from_the_settings() -> None:
    code = (
        "import media_pipeline.definitions as d; "
        "print(sorted({d.defs.resolve_job_def(j).executor_def.name for j in "
        "('ingest_cut', 'render_final_video', 'render_slideshow', 'frame_extraction')}))"
    )
    for mode, expected in (("", "in_process"), ("multiprocess", "multiprocess"), ("celery", "celery")):
        env = {**os.environ, "MEDIA_PIPELINE_EXECUTOR": mode}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == repr([expected])


def test_every_ffmpeg_step_goes_to_the_ffmpeg_queue() -> None:
    import media_pipeline.definitions as d

    pooled: dict[str, str] = {}
    for job in d.defs.get_repository_def().get_all_jobs():
        for node in job.graph.iterate_op_defs():
            if node.pool == "ffmpeg":
                pooled[node.name] = node.tags.get("dagster-celery/queue", "dagster")
    assert {"shot_thumbnails", "shot_proxies", "final_video_chunk", "slideshow_video", "extraction_frames"} <= set(
        pooled
    )
    assert set(pooled.values()) == {FFMPEG_QUEUE}, pooled


def test_light_steps_go_to_the_default_queue() -> None:
    from dagster._core.execution.api import create_execution_plan

    import media_pipeline.definitions as d

    plan = create_execution_plan(d.defs.resolve_job_def("ingest_cut"), run_config={})
    queues = {step.key: queue_for(step) for step in plan.steps}
    assert queues["cut_timeline"] == queues["cut_shots"] == "dagster"
    assert queues["shot_thumbnails"] == FFMPEG_QUEUE


def test_an_unknown_executor_is_refused_with_its_setting() -> None:
    with pytest.raises(ValueError, match="MEDIA_PIPELINE_EXECUTOR must be one of in_process, multiprocess, celery"):
        load_settings({"MEDIA_PIPELINE_EXECUTOR": "kubernetes"})


def test_celery_mode_names_every_setting_that_keeps_state_on_one_machine(tmp_path: Path) -> None:
    problems = shared_state_problems(load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)}))
    assert len(problems) == 3
    text = " ".join(problems)
    for name in ("DATABASE_URL", "DAGSTER_POSTGRES_URL", "ARTIFACTS_SHARED"):
        assert f"MEDIA_PIPELINE_{name}" in text
    shared = load_settings(
        {
            "MEDIA_PIPELINE_HOME": str(tmp_path),
            "MEDIA_PIPELINE_DATABASE_URL": "postgresql+psycopg://postgres@db/mp",
            "MEDIA_PIPELINE_DAGSTER_POSTGRES_URL": "postgresql+psycopg2://postgres@db/mp",
            "MEDIA_PIPELINE_ARTIFACTS_SHARED": "true",
        }
    )
    assert shared_state_problems(shared) == []


@pytest.mark.parametrize("command", [["up", "--no-sample"], ["worker"]])
def test_up_and_the_worker_refuse_sqlite_and_a_local_store_in_celery_mode(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("MEDIA_PIPELINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEDIA_PIPELINE_HOME", str(tmp_path))
    monkeypatch.setenv("MEDIA_PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("MEDIA_PIPELINE_DAGSTER_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/x")
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "MEDIA_PIPELINE_EXECUTOR=celery" in err and "set MEDIA_PIPELINE_DATABASE_URL" in err
    assert "MEDIA_PIPELINE_ARTIFACTS_SHARED=true" in err
    assert "MEDIA_PIPELINE_DAGSTER_POSTGRES_URL" not in err.split("but", 1)[1]  # that one is set
    assert not (tmp_path / "media_pipeline.db").exists()  # refused before anything was created


def test_the_worker_needs_celery_mode(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEDIA_PIPELINE_EXECUTOR", "in_process")
    assert cli.main(["worker", "--queues", "ffmpeg"]) == 2
    assert "set MEDIA_PIPELINE_EXECUTOR=celery" in capsys.readouterr().err
