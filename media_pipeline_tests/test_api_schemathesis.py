"""Property-based checks of the API against its own OpenAPI document (schemathesis).

Every operation gets generated valid and invalid requests (authenticated); the API must never
answer 5xx, every status and content type must be documented, every body must match its schema,
and schema-invalid requests must be rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from api.dagster_gateway import PARTITION_TAG, InProcessGateway
from media_pipeline.definitions import defs
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, three_shot_cut, upload

EXAMPLES = 20
# A generated invalid body can also be a big one; the API refusing it as too large (413, documented
# on every operation with a body) is a rejection too, which schemathesis' default list leaves out.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}})
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class QueueingGateway(InProcessGateway):
    """Runs ingests and thumbnails, but leaves final-video, proxy, slideshow and frame-extraction runs
    waiting, as behind a busy run queue.

    Generated requests ask for any resolution and preset up to 7680x4320 `veryslow`, or a hundred
    videos at made-up addresses; doing that work is not what this test checks, and a queued run is
    a state the API must describe too.
    """

    def submit(
        self, job_name: str, partition_key: str | None, run_config: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str:
        if job_name not in ("render_final_video", "render_proxies", "frame_extraction", "render_slideshow"):
            return super().submit(job_name, partition_key, run_config, tags)
        run = self.instance.create_run_for_job(
            defs.resolve_job_def(job_name),
            run_config=dict(run_config),
            tags={**tags, PARTITION_TAG: partition_key or ""},
        )  # NOT_STARTED: a job `queued` (QUEUED itself needs a code location origin)
        return run.run_id


@pytest.fixture
def gateway(instance: dg.DagsterInstance) -> InProcessGateway:
    return QueueingGateway(instance)


def exercise(operation: schemathesis.APIOperation, mode: GenerationMode, checks: list, examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same requests every run: a failure here is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=checks)

    run()


def test_api_conforms_to_its_openapi_document(
    app: FastAPI, client: TestClient, plate: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Half as many on Postgres (the same derandomized generator, so much the same requests): where
    # the databases differ (integer ranges, text they refuse) shows in any of them, and the SQLite
    # run alone takes minutes.
    examples = EXAMPLES if request.node.callspec.params["db_url"] == "sqlite" else EXAMPLES // 2
    # Real data for generated ids to land on now and then: cut 1 with shots 1-3 and a job.
    assert upload(client, three_shot_cut(tmp_path, plate)).status_code == 202
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures = []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            extra = [negative_data_rejection] if mode is GenerationMode.NEGATIVE else []
            try:
                exercise(operation, mode, [*CHECKS, *extra], examples)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, label  # nothing to get wrong in a parameterless GET
            except Exception as exc:
                failures.append(f"{label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
