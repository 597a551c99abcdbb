"""A real S3-protocol server on loopback for the storage tests: moto's server mode.

boto3 talks HTTP to it exactly as it would to MinIO or AWS (signatures, multipart uploads,
ranged GETs); nothing inside the process is patched. Star-import the fixtures into a test module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from media_pipeline.resources import ArtifactStore
from media_pipeline_tests.up_process import free_port

# Star-imported by the test modules: pytest finds fixtures in a module's namespace.
__all__ = ["s3_bucket", "s3_endpoint", "s3_endpoint_with_auth"]

ACCESS_KEY = "media-pipeline-test"
SECRET_KEY = "media-pipeline-test-secret"


def s3_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"moto_server did not listen on {port} within {timeout} s")


def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """`moto_server` as a child process on a free loopback port: its endpoint URL."""
    port = free_port()
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A child process, so Dagster run workers, webservers and the API (other processes) reach it too."""
    yield from moto_server()


@pytest.fixture(scope="session")
def s3_endpoint_with_auth() -> Iterator[str]:
    """A server that checks credentials (moto's IAM emulation): every key it was not given is refused."""
    yield from moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    name = f"mp-test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_store(root: Path, endpoint: str, bucket: str, prefix: str = "", **overrides: str) -> ArtifactStore:
    fields = {
        "root": str(root),
        "storage": "s3",
        "s3_endpoint_url": endpoint,
        "s3_bucket": bucket,
        "s3_region": "us-east-1",
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
        "s3_prefix": prefix,
    }
    return ArtifactStore(**{**fields, **overrides})


def s3_env(endpoint: str, bucket: str, prefix: str = "") -> dict[str, str]:
    """The settings that point a process at the bucket."""
    return {
        "MEDIA_PIPELINE_STORAGE": "s3",
        "MEDIA_PIPELINE_S3_ENDPOINT_URL": endpoint,
        "MEDIA_PIPELINE_S3_BUCKET": bucket,
        "MEDIA_PIPELINE_S3_REGION": "us-east-1",
        "MEDIA_PIPELINE_S3_ACCESS_KEY": ACCESS_KEY,
        "MEDIA_PIPELINE_S3_SECRET_KEY": SECRET_KEY,
        "MEDIA_PIPELINE_S3_PREFIX": prefix,
    }


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    client = s3_client(endpoint)
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {item["Key"] for item in page.get("Contents", [])}
    return keys
