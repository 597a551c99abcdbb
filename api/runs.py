"""From a Dagster run to what a job reports: its status and the failure sentence (the platform's,
re-exported here). Progress, stage, items and logs come from the run's structured records
(`api/job_progress.py`); how much each step is worth comes from the registered job kinds."""

from __future__ import annotations

# Status and failure sentences are the platform's: the job tracker sensor writes the same ones.
from media_pipeline.platform.job_state import RUN_STATUS_TO_JOB as RUN_STATUS_TO_JOB
from media_pipeline.platform.job_state import TERMINAL as TERMINAL
from media_pipeline.platform.job_state import RunStatus as RunStatus
from media_pipeline.platform.job_state import clip as clip
from media_pipeline.platform.job_state import failure_sentence as failure_sentence
from media_pipeline.platform.job_state import job_status as job_status
