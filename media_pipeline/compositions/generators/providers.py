"""HTTP adapters for hosted image-to-video providers: Runway and Stability.

Both follow their published asynchronous task protocols: a POST starts a task and answers its
id, the task is polled until it has finished, and the clip is downloaded at once into our
storage (a provider's URL expires; no output depends on it). Every request has a timeout; a
429 or 5xx answer is retried with exponential backoff, waiting at least what `Retry-After`
asks; the API key comes from the settings and is sent to the configured host only; a download
is taken only from the provider's own host or the hosts listed in
MEDIA_PIPELINE_GENERATOR_DOWNLOAD_HOSTS, never through a redirect, and never more than
MEDIA_PIPELINE_FETCH_MAX_BYTES.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import mimetypes
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from media_pipeline.compositions.generators.base import (
    Capabilities,
    GenerationRequest,
    Generator,
    GeneratorError,
    TaskState,
    TaskStatus,
)
from media_pipeline.core.files import atomic_path
from media_pipeline.settings import Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ProviderClient:
    """Requests to one provider: timeouts, retries with backoff honouring Retry-After, host checks."""

    def __init__(
        self,
        name: str,
        base_url: str,
        headers: dict[str, str],
        *,
        download_hosts: tuple[str, ...],
        timeout: float,
        max_bytes: int,
        attempts: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.host = (urlsplit(self.base_url).hostname or "").lower()
        self.download_hosts = frozenset({self.host, *(h.lower() for h in download_hosts)})
        self.attempts, self.backoff, self.max_bytes, self._sleep = attempts, backoff, max_bytes, sleep
        # No redirects: the key must not follow one to another host, nor a download leave the allowed ones.
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout), follow_redirects=False)
        # Downloads from any other (CDN) host go without the key.
        self.anonymous = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to `method path` after retrying 429/5xx and connection errors; GeneratorError
        once the attempts are spent."""
        url = f"{self.base_url}{path}"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                error, wait = f"{self.name} did not answer {method} {path} in time ({type(exc).__name__})", None
            except httpx.TransportError as exc:
                error, wait = f"{self.name} could not be reached ({type(exc).__name__}: {exc})", None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                error = f"{self.name} answered {response.status_code} to {method} {path}"
                wait = response.headers.get("retry-after")
            if attempt == self.attempts:
                raise GeneratorError(f"{error}, {self.attempts} times; giving up")
            self.pause(attempt, wait)
        raise AssertionError("unreachable")

    def pause(self, attempt: int, retry_after_header: str | None = None) -> None:
        """Wait before attempt `attempt + 1`: exponential backoff, at least what Retry-After asks."""
        self._sleep(max(retry_after(retry_after_header) or 0.0, self.backoff * 2 ** (attempt - 1)))

    @contextlib.contextmanager
    def stream(self, url: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """GET `url` streamed, retried like `request`; the last answer (any status) is yielded."""
        client = self.client if (urlsplit(url).hostname or "").lower() == self.host else self.anonymous
        for attempt in range(1, self.attempts + 1):
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code in RETRY_STATUSES and attempt < self.attempts:
                        retry_header = response.headers.get("retry-after")
                    else:
                        yield response
                        return
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise GeneratorError(f"{self.name} could not be reached ({type(exc).__name__})") from exc
                retry_header = None
            self.pause(attempt, retry_header)

    def download(self, url: str, target: Path) -> None:
        """Stream `url` into `target` (atomically), if its host is allowed."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or host not in self.download_hosts:
            raise GeneratorError(
                f"{self.name} offered its clip at {parts.scheme}://{host}, which is not an allowed host; "
                "add it to MEDIA_PIPELINE_GENERATOR_DOWNLOAD_HOSTS if it is the provider's own"
            )
        with self.stream(url) as response:
            if response.status_code != 200:
                raise GeneratorError(f"{self.name}'s clip download answered {response.status_code}")
            self.write(response, target)

    def write(self, response: httpx.Response, target: Path) -> None:
        size = 0
        with atomic_path(target) as tmp, tmp.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                size += len(chunk)
                if size > self.max_bytes:
                    raise GeneratorError(
                        f"{self.name}'s clip is larger than MEDIA_PIPELINE_FETCH_MAX_BYTES ({self.max_bytes} bytes)"
                    )
                out.write(chunk)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("error", "message", "failure", "errors", "name"):
            if body.get(key):
                value = body[key]
                return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(body)[:200]


class _ProviderGenerator(Generator):
    provider = ""
    key_setting = ""

    def __init__(self, settings: Settings, key: str, url: str) -> None:
        self.settings, self.key, self.url = settings, key, url
        self._client: ProviderClient | None = None
        self._lock = threading.Lock()

    def key_set(self) -> bool:
        return bool(self.key)

    def unavailable(self) -> str | None:
        if not self.key:
            return f"generator {self.id} needs {self.key_setting}, which is not set; set it on the server and restart"
        return None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def client(self) -> ProviderClient:
        with self._lock:
            if self._client is None:
                self._client = ProviderClient(
                    self.provider, self.url, self.headers(), download_hosts=self.settings.generator_download_hosts,
                    timeout=self.settings.generator_request_timeout, max_bytes=self.settings.fetch_max_bytes,
                )  # fmt: skip
            return self._client

    def _input(self, request: GenerationRequest) -> Path:
        if not request.inputs:
            raise GeneratorError(f"generator {self.id} makes video from an image: give the segment one input")
        return request.inputs[0]


# -- Runway -----------------------------------------------------------------------------------

RUNWAY_RATIOS = ((1280, 720), (720, 1280), (1104, 832), (832, 1104), (960, 960), (1584, 672))


class RunwayParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["gen4_turbo", "gen3a_turbo"] = Field(default="gen4_turbo", description="Runway's model")


class RunwayGenerator(_ProviderGenerator):
    """Runway's image-to-video (POST /v1/image_to_video, GET and DELETE /v1/tasks/{id})."""

    id = "runway"
    version = "1"
    description = "Runway image-to-video (Gen-4 Turbo, Gen-3 Alpha Turbo), 5 or 10 s clips from one image."
    params_model = RunwayParams
    capabilities = Capabilities(
        durations=(Fraction(5), Fraction(10)), max_seconds=Fraction(10), sizes=RUNWAY_RATIOS, inputs=1,
        requires_input=True, needs_key=True, can_cancel=True, pool="runway",
    )  # fmt: skip
    provider = "Runway"
    key_setting = "MEDIA_PIPELINE_RUNWAY_API_KEY"
    poll_seconds = 5.0
    API_VERSION = "2024-11-06"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.runway_api_key, settings.runway_url)
        self._outputs: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "X-Runway-Version": self.API_VERSION}

    def model(self, params: dict[str, Any]) -> str:
        return str(params.get("model", "gen4_turbo"))

    def submit(self, request: GenerationRequest) -> str:
        image = self._input(request)
        mime = mimetypes.guess_type(image.name)[0] or "image/png"
        body = {
            "model": self.model(request.params),
            "promptImage": f"data:{mime};base64,{base64.b64encode(image.read_bytes()).decode()}",
            "promptText": request.prompt[:1000],
            "ratio": f"{request.width}:{request.height}",
            "duration": int(request.seconds),
            "seed": request.seed % 4294967296,
        }
        response = self.client.request("POST", "/v1/image_to_video", json=body)
        if response.status_code not in (200, 201):
            raise GeneratorError(f"Runway refused the task ({response.status_code}): {_detail(response)}")
        return str(response.json()["id"])

    def poll(self, task_id: str) -> TaskState:
        response = self.client.request("GET", f"/v1/tasks/{task_id}")
        if response.status_code != 200:
            raise GeneratorError(
                f"Runway's task {task_id} could not be read ({response.status_code}): {_detail(response)}"
            )
        body = response.json()
        status: TaskStatus = body.get("status", "PENDING")
        if status == "SUCCEEDED":
            outputs = body.get("output") or []
            if not outputs:
                return TaskState("FAILED", error="Runway said the task succeeded but gave no output")
            self._outputs[task_id] = str(outputs[0])
        error = None
        if status == "FAILED":
            error = f"Runway: {body.get('failure') or 'the task failed'}" + (
                f" ({body['failureCode']})" if body.get("failureCode") else ""
            )
        progress = body.get("progress")
        return TaskState(status, float(progress) if isinstance(progress, int | float) else None, error)

    def fetch(self, task_id: str, target: Path) -> None:
        self.client.download(self._outputs.pop(task_id), target)

    def cancel(self, task_id: str) -> None:
        self.client.request("DELETE", f"/v1/tasks/{task_id}")


# -- Stability --------------------------------------------------------------------------------


class StabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cfg_scale: float = Field(default=1.8, ge=0, le=10, description="How strongly the video sticks to the image")
    motion_bucket_id: int = Field(default=127, ge=1, le=255, description="Less or more motion")


class StabilityGenerator(_ProviderGenerator):
    """Stability's image-to-video (POST /v2beta/image-to-video, GET .../result/{id}: 202 while it runs)."""

    id = "stability"
    version = "1"
    description = "Stability image-to-video (Stable Video Diffusion): about 4 s from one image."
    params_model = StabilityParams
    capabilities = Capabilities(
        durations=(Fraction(4),), max_seconds=Fraction(4), sizes=((1024, 576), (576, 1024), (768, 768)), inputs=1,
        requires_input=True, needs_key=True, can_cancel=False, pool="stability",
    )  # fmt: skip
    provider = "Stability"
    key_setting = "MEDIA_PIPELINE_STABILITY_API_KEY"
    poll_seconds = 10.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.stability_api_key, settings.stability_url)
        self._workdirs: dict[str, Path] = {}

    def model(self, params: dict[str, Any]) -> str:
        return "stable-video-diffusion"

    def submit(self, request: GenerationRequest) -> str:
        image = self._input(request)
        files = {"image": (image.name, image.read_bytes(), mimetypes.guess_type(image.name)[0] or "image/png")}
        data = {
            "seed": str(request.seed % 4294967295),
            "cfg_scale": str(request.params.get("cfg_scale", 1.8)),
            "motion_bucket_id": str(request.params.get("motion_bucket_id", 127)),
        }
        response = self.client.request("POST", "/v2beta/image-to-video", files=files, data=data)
        if response.status_code != 200:
            raise GeneratorError(f"Stability refused the task ({response.status_code}): {_detail(response)}")
        task_id = str(response.json()["id"])
        self._workdirs[task_id] = request.workdir
        return task_id

    def _result(self, task_id: str) -> Path:
        return self._workdirs.get(task_id, Path(".")) / f"stability-{task_id}.mp4"

    def poll(self, task_id: str) -> TaskState:
        # The finished result is the clip itself: it is written to our storage as it arrives.
        url = f"{self.client.base_url}/v2beta/image-to-video/result/{task_id}"
        with self.client.stream(url, {"Accept": "video/*"}) as response:
            if response.status_code == 202:
                return TaskState("RUNNING")
            if response.status_code == 200:
                self.client.write(response, self._result(task_id))
                return TaskState("SUCCEEDED", 1.0)
            response.read()
            return TaskState("FAILED", error=f"Stability ({response.status_code}): {_detail(response)}")

    def fetch(self, task_id: str, target: Path) -> None:
        self._result(task_id).replace(target)
        self._workdirs.pop(task_id, None)
