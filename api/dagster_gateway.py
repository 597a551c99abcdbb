"""Everything the API asks of Dagster, behind one small interface.

Runs are *launched* through the Dagster webserver's GraphQL API, so they go through the run
coordinator (queued, limited, visible in the UI) exactly like runs launched from the UI. Run
state is *read* from the Dagster instance directly: it is the same storage the webserver
reads, and one query per job is cheaper than a GraphQL round trip.

`InProcessGateway` executes the real job definitions on a given instance without a webserver
or daemon, for tests and single-process embedding.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
from dagster._core.events import EngineEventData

from media_pipeline.platform.job_kinds import CANCEL_PENDING_MESSAGE, CANCEL_REQUESTED, CANCEL_TAG, JOB_ID_TAG
from media_pipeline.settings import Settings

logger = logging.getLogger("api.dagster")

PARTITION_TAG = "dagster/partition"


class GatewayError(RuntimeError):
    """Dagster could not be reached (`unreachable`) or did not accept a request.

    The message is one line meant for clients: the full exception goes to the server log.
    """

    def __init__(self, message: str, *, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _reason(exc: BaseException) -> str:
    # Dagster's errors carry stack traces after their first line; those stay in the log.
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else type(exc).__name__
    return first[:300]


def _connection_failed(exc: BaseException) -> bool:
    """Whether the webserver was not reached at all (as opposed to answering with an error)."""
    # The GraphQL client wraps transport errors in its own error type, sometimes twice.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError | TimeoutError) or type(seen).__module__.startswith(("requests.", "urllib3.")):
            return True
        if type(seen).__name__ == "TransportServerError":  # a 5xx from the webserver
            return True
        seen = seen.__cause__ or seen.__context__
    return "Error when connecting" in str(exc)


def _rejected(what: str, exc: BaseException) -> GatewayError:
    logger.warning("%s", what, exc_info=exc)
    return GatewayError(f"{what}: {_reason(exc)}", unreachable=False)


def _unreachable(what: str, exc: BaseException) -> GatewayError:
    logger.warning("%s", what, exc_info=exc)
    return GatewayError(f"{what}: {_reason(exc)}", unreachable=True)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    job_name: str
    status: dg.DagsterRunStatus
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


class DagsterGateway(Protocol):
    def add_partition(self, partitions: str, partition_key: str) -> None:
        """Make sure `partition_key` exists in the dynamic partitions named `partitions` (idempotent)."""

    def submit(
        self, job_name: str, partition_key: str | None, run_config: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str:
        """Launch `job_name` (for one partition, unless None); the new run's id."""

    def run_status(self, run_id: str) -> RunInfo | None:
        """The run's current state; None if the instance has no such run."""

    def run_statuses(self, run_ids: Iterable[str]) -> dict[str, RunInfo]: ...

    def find_run(self, job_id: str) -> RunInfo | None:
        """The run tagged with our job id (recovers a launch whose run id was never recorded)."""

    def run_logs(self, run_id: str) -> list[dg.EventLogEntry]:
        """All of the run's event log entries, oldest first."""

    def run_records(self, run_id: str, cursor: str | None, limit: int) -> tuple[list[dg.EventLogRecord], str, bool]:
        """Up to `limit` of the run's records after `cursor` (None: from the start), oldest first;
        the cursor after them, and whether more follow."""

    def cancel(self, run_id: str) -> None:
        """Ask Dagster to terminate the run; it moves through CANCELING to CANCELED."""

    def ping(self) -> None:
        """Raise GatewayError unless Dagster can take requests."""


def _utc(timestamp: float | dt.datetime | None) -> dt.datetime | None:
    if timestamp is None:
        return None
    if isinstance(timestamp, dt.datetime):
        return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _run_info(record: Any) -> RunInfo:
    run = record.dagster_run
    return RunInfo(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status,
        created_at=_utc(record.create_timestamp),
        updated_at=_utc(record.update_timestamp),
    )


class InstanceReads:
    """Reads (and partition writes) against a Dagster instance, shared by both gateways."""

    def __init__(self, instance: dg.DagsterInstance | None = None) -> None:
        self._instance = instance
        self._lock = threading.Lock()

    @property
    def instance(self) -> dg.DagsterInstance:
        with self._lock:
            if self._instance is None:
                try:
                    self._instance = self._load_instance()
                except Exception as exc:
                    raise _unreachable("the Dagster instance could not be opened (is DAGSTER_HOME set?)", exc) from exc
            return self._instance

    def _load_instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.get()

    def add_partition(self, partitions: str, partition_key: str) -> None:
        try:
            if not self.instance.has_dynamic_partition(partitions, partition_key):
                self.instance.add_dynamic_partitions(partitions, [partition_key])
        except Exception as exc:
            raise _unreachable(f"could not add partition {partition_key!r} to the Dagster instance", exc) from exc

    def run_status(self, run_id: str) -> RunInfo | None:
        return self.run_statuses([run_id]).get(run_id)

    def run_statuses(self, run_ids: Iterable[str]) -> dict[str, RunInfo]:
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return {}
        try:
            records = self.instance.get_run_records(filters=dg.RunsFilter(run_ids=ids))
        except Exception as exc:
            raise _unreachable("the Dagster instance could not be read", exc) from exc
        return {record.dagster_run.run_id: _run_info(record) for record in records}

    def find_run(self, job_id: str) -> RunInfo | None:
        try:
            records = self.instance.get_run_records(filters=dg.RunsFilter(tags={JOB_ID_TAG: job_id}), limit=1)
        except Exception as exc:
            raise _unreachable("the Dagster instance could not be read", exc) from exc
        return _run_info(records[0]) if records else None

    def run_logs(self, run_id: str) -> list[dg.EventLogEntry]:
        try:
            return list(self.instance.all_logs(run_id))
        except Exception as exc:
            raise _unreachable("the run's event log could not be read", exc) from exc

    def run_records(self, run_id: str, cursor: str | None, limit: int) -> tuple[list[dg.EventLogRecord], str, bool]:
        try:
            page = self.instance.get_records_for_run(run_id, cursor=cursor, limit=limit)
        except Exception as exc:
            raise _unreachable("the run's event log could not be read", exc) from exc
        return list(page.records), page.cursor, page.has_more

    def _ping_instance(self) -> None:
        try:
            self.instance.get_run_records(limit=1)
        except Exception as exc:
            raise _unreachable("the Dagster instance storage is not readable", exc) from exc


# The webserver runs under this prefix, so the API can proxy its UI at the same path (api/dagster_ui.py).
UI_PATH_PREFIX = "/dagster"


class GraphQLGateway(InstanceReads):
    """The gateway of a real deployment: dagster-webserver at `host:port`, instance from DAGSTER_HOME."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        instance: dg.DagsterInstance | None = None,
        dagster_home: Path | None = None,
        location_name: str | None = None,
        timeout: int = 30,
    ) -> None:
        super().__init__(instance)
        # A wildcard bind address is where the webserver listens, not an address to connect to.
        self.host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.port = port
        self.dagster_home = dagster_home
        self.location_name = location_name
        self.timeout = timeout
        self._clients = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphQLGateway:
        # $DAGSTER_HOME (`media-pipeline up` exports it), else the folder `up` would use.
        return cls(settings.host, settings.ui_port, dagster_home=settings.dagster_instance_home)

    def _load_instance(self) -> dg.DagsterInstance:
        if self.dagster_home is None:
            return dg.DagsterInstance.get()
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    @property
    def client(self) -> Any:
        # One client per thread: the GraphQL client's transport holds one connection and refuses
        # a second request while one is in flight ("Transport is already connected"), and the
        # API serves concurrent requests from a thread pool.
        client = getattr(self._clients, "client", None)
        if client is None:
            from dagster_graphql import DagsterGraphQLClient

            client = self._clients.client = DagsterGraphQLClient(
                self.host, port_number=self.port, timeout=self.timeout, path_prefix=UI_PATH_PREFIX
            )
        return client

    def submit(
        self, job_name: str, partition_key: str | None, run_config: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str:
        from dagster_graphql import DagsterGraphQLClientError

        # submit_job_execution has no partition argument: the partition tag is how the
        # webserver (and the UI) knows which partition a run is for.
        try:
            return str(
                self.client.submit_job_execution(
                    job_name,
                    repository_location_name=self.location_name,
                    run_config=dict(run_config),
                    tags={**tags, PARTITION_TAG: partition_key} if partition_key is not None else dict(tags),
                )
            )
        except DagsterGraphQLClientError as exc:
            if _connection_failed(exc):
                raise _unreachable(f"Dagster at {self.host}:{self.port} could not be reached", exc) from exc
            raise _rejected(f"Dagster did not launch {job_name}", exc) from exc
        except Exception as exc:
            raise _unreachable(f"Dagster at {self.host}:{self.port} could not be reached", exc) from exc

    def cancel(self, run_id: str) -> None:
        # Dagster refuses to terminate a STARTING run (its worker is not up to be told). The
        # request is recorded on the run instead, and the job_tracker sensor terminates the run
        # once it has started; one that started while it was being tagged is terminated now.
        if self._status(run_id) == dg.DagsterRunStatus.STARTING:
            try:
                self.instance.add_run_tags(run_id, {CANCEL_TAG: CANCEL_REQUESTED})
                run = self.instance.get_run_by_id(run_id)
                if run is not None:
                    self.instance.report_engine_event(
                        CANCEL_PENDING_MESSAGE,
                        run,
                        EngineEventData(metadata={CANCEL_TAG: dg.MetadataValue.text(CANCEL_REQUESTED)}),
                    )
            except Exception as exc:
                raise _unreachable("the Dagster instance could not be written", exc) from exc
            status = self._status(run_id)
            if status is None or status == dg.DagsterRunStatus.STARTING:
                return
        self._terminate(run_id)

    def _status(self, run_id: str) -> dg.DagsterRunStatus | None:
        try:
            run = self.instance.get_run_by_id(run_id)
        except Exception as exc:
            raise _unreachable("the Dagster instance could not be read", exc) from exc
        return None if run is None or run.is_finished else run.status

    def _terminate(self, run_id: str) -> None:
        from dagster_graphql import DagsterGraphQLClientError

        try:
            self.client.terminate_run(run_id)
        except DagsterGraphQLClientError as exc:
            if _connection_failed(exc):
                raise _unreachable(f"Dagster at {self.host}:{self.port} could not be reached", exc) from exc
            raise _rejected(f"Dagster did not terminate run {run_id}", exc) from exc
        except Exception as exc:
            raise _unreachable(f"Dagster at {self.host}:{self.port} could not be reached", exc) from exc

    def ping(self) -> None:
        url = f"http://{self.host}:{self.port}{UI_PATH_PREFIX}/server_info"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise GatewayError(
                f"the Dagster webserver at {self.host}:{self.port} is not answering: {_reason(exc)}"
            ) from exc
        self._ping_instance()


def _definitions(module: str) -> dg.Definitions:
    defs = importlib.import_module(module).defs
    assert isinstance(defs, dg.Definitions)
    return defs


def _execute(
    instance: dg.DagsterInstance,
    module: str,
    job_name: str,
    run_id: str,
    partition_key: str | None,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> None:
    job = _definitions(module).resolve_job_def(job_name)
    job.execute_in_process(
        run_config=dict(run_config),
        instance=instance,
        partition_key=partition_key,
        run_id=run_id,
        tags=dict(tags),
        raise_on_error=False,
    )


def _execute_in_child(instance_ref: Any, *args: Any) -> None:
    # Runs on the child's main thread, so Dagster turns a SIGINT into an orderly cancellation,
    # exactly as in a run worker terminated by the run launcher.
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        _execute(instance, *args)


class InProcessGateway(InstanceReads):
    """Executes the real job definitions on `instance`, without webserver or daemon.

    By default a submitted run executes synchronously before `submit` returns. With
    `background=True` it executes in a child process and `submit` returns once the run exists;
    `cancel` then terminates it the way Dagster's run launcher does (CANCELING, then an
    interrupt to the process running it, then CANCELED).
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        *,
        definitions_module: str = "media_pipeline.definitions",
        background: bool = False,
        start_timeout: float = 60,
    ) -> None:
        super().__init__(instance)
        self.definitions_module = definitions_module
        self.background = background
        self.start_timeout = start_timeout
        self._children: dict[str, BaseProcess] = {}
        self._watchers: list[threading.Thread] = []

    def submit(
        self, job_name: str, partition_key: str | None, run_config: Mapping[str, Any], tags: Mapping[str, str]
    ) -> str:
        run_id = str(uuid.uuid4())
        args = (self.definitions_module, job_name, run_id, partition_key, dict(run_config), dict(tags))
        if not self.background:
            try:
                _execute(self.instance, *args)
            except Exception as exc:  # a run that fails is not an exception; this is a launch failure
                raise _rejected(f"Dagster did not launch {job_name}", exc) from exc
            return run_id
        child = multiprocessing.get_context("spawn").Process(
            target=_execute_in_child, args=(self.instance.get_ref(), *args), daemon=True
        )
        child.start()
        self._children[run_id] = child
        deadline = time.monotonic() + self.start_timeout
        while self.instance.get_run_by_id(run_id) is None:
            if not child.is_alive():
                raise GatewayError(
                    f"the process for {job_name} exited with code {child.exitcode} before the run began",
                    unreachable=False,
                )
            if time.monotonic() > deadline:
                child.kill()
                raise GatewayError(f"{job_name} did not begin within {self.start_timeout:.0f} s")
            time.sleep(0.05)
        return run_id

    def cancel(self, run_id: str) -> None:
        run = self.instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        child = self._children.get(run_id)
        if child is None or not child.is_alive():
            # Nothing of ours executes it: like the queued run coordinator with a run it has not
            # launched yet, cancelling is only a state change.
            if run.status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED):
                self.instance.report_run_canceled(run)
            else:
                self.instance.report_run_canceling(run)
            return
        self._wait_until_started(run_id, child)
        run = self.instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        self.instance.report_run_canceling(run)
        watcher = threading.Thread(target=self._interrupt_until_stopped, args=(run_id, child), daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def _interrupt_until_stopped(self, run_id: str, child: BaseProcess, grace: float = 20) -> None:
        # Dagster turns SIGINT into an interrupt of the running step, but one that lands while
        # Python runs a finalizer is swallowed; repeat it until the run stops. Past the grace
        # period the process is killed and the run marked cancelled, as Dagster's run
        # monitoring does with a run that ignores its termination.
        deadline = time.monotonic() + grace
        while child.is_alive() and time.monotonic() < deadline:
            run = self.instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                return
            if child.pid is not None:
                os.kill(child.pid, signal.SIGINT)
            child.join(1.0)
        if child.is_alive():
            child.kill()
            child.join()
        run = self.instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_canceled(run)

    def _wait_until_started(self, run_id: str, child: BaseProcess, timeout: float = 30) -> None:
        # An interrupt before Dagster installs its handlers would kill the process without
        # recording anything; wait until the run is executing.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.is_alive():
            run = self.instance.get_run_by_id(run_id)
            if run is not None and (run.status == dg.DagsterRunStatus.STARTED or run.is_finished):
                return
            time.sleep(0.05)

    def join(self, timeout: float = 60) -> None:
        """Wait for every background run to finish (tests call this before tearing down)."""
        for watcher in self._watchers:
            watcher.join(timeout)
        for child in self._children.values():
            child.join(timeout)

    def ping(self) -> None:
        self._ping_instance()
