"""Both instance templates use Dagster's queued run coordinator, with its queue read twice a second."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import yaml
from dagster._daemon.controller import create_daemon_of_type
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from media_pipeline.cli import INSTANCE_TEMPLATES
from media_pipeline.platform.run_coordinator import PromptQueuedRunCoordinator


def test_the_queue_daemon_reads_the_queue_every_half_second(tmp_path: Path) -> None:
    shutil.copyfile(INSTANCE_TEMPLATES / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, PromptQueuedRunCoordinator)
        daemon = create_daemon_of_type(QueuedRunCoordinatorDaemon.daemon_type(), instance)
        assert daemon.interval_seconds == 0.5  # Dagster's own setting stops at 1 s
        # Dagster's run limit still applies, from the template's `concurrency:` section.
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4


def test_the_postgres_template_names_the_same_coordinator() -> None:
    def coordinator(template: str) -> object:
        return yaml.safe_load((INSTANCE_TEMPLATES / template).read_text())["run_coordinator"]

    assert coordinator("dagster.postgres.yaml") == coordinator("dagster.yaml")
