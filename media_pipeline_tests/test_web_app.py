"""The review web app in a real browser (Debian's Chromium driven by Playwright) against a real
`media-pipeline up`: sign in, publish, watch the ingest, see thumbnails, diff, play, cancel, and
the API's sentences on the page for a bad token, an API error and a failed job.

Screenshots of each page go to `.test-artifacts/screenshots/` at the repository root.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import httpx
import pytest

from media_pipeline.samples import make_indexed_movie
from media_pipeline_tests.conftest import CORPUS, REPO
from media_pipeline_tests.test_api_support import clip, write_otio
from media_pipeline_tests.test_stack_api import TOKEN, Stack
from media_pipeline_tests.up_process import free_port, stop_up, up_command, wait_for_up
from media_pipeline_tests.waiting import running, service_environment

pytestmark = pytest.mark.stack

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is a [test] extra: scripts/test installs it"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / ".test-artifacts" / "screenshots"
# Ceilings for what a loaded 2-core machine may take; each wait ends as soon as the page shows it.
JOB_CEILING_MS = 240_000
PAGE_CEILING_MS = 60_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("web") / "home"
    ui_port, api_port = free_port(), free_port()
    env = service_environment(
        {
            "MEDIA_PIPELINE_API_TOKEN": TOKEN,
            # The tests generate plates under pytest's temp folder: media may be read from there.
            "MEDIA_PIPELINE_MEDIA_ROOTS": str(tmp_path_factory.getbasetemp()),
        }
    )
    process = subprocess.Popen(
        up_command(home, ui_port, api_port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_up(ui_port, api_port, running(process, "media-pipeline up"))
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
            yield Stack(process, home, api)
    finally:
        stop_up(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: scripts/test installs Debian's `chromium` (apt-get install chromium)")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack: Stack, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=str(stack.api.base_url), viewport={"width": 1366, "height": 900})
    context.set_default_timeout(PAGE_CEILING_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        screenshot(tab, f"FAILED-{request.node.name}")
        print(f"page at failure: {tab.url}\n{tab.locator('main').inner_text()[:3000]}\n{stack.logs()}")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, token: str = TOKEN, *, expect_success: bool = True) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    if expect_success:
        # The cuts page is drawn once the token is checked; a form filled before would be replaced.
        page.get_by_role("heading", name="Cuts").wait_for()


def publish(page, timeline: Path, project: str, name: str, rate: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto("/app/#/cuts")
    page.get_by_label("Timeline (OTIO, EDL, FCP XML)").set_input_files(str(timeline))
    page.get_by_label("Project").fill(project)
    page.get_by_label("Cut name").fill(name)
    if rate:
        page.get_by_label("EDL frame rate").fill(rate)
    page.get_by_role("button", name="Publish").click()


def cut_heading(page, title: str) -> None:  # type: ignore[no-untyped-def]
    # Publishing launches the ingest run through Dagster before it answers: seconds when idle.
    page.get_by_role("heading", name=title).wait_for(timeout=JOB_CEILING_MS)


def wait_for_job(page, kind: str, status: str = "succeeded") -> None:  # type: ignore[no-untyped-def]
    row = page.locator("table.jobs tr", has=page.get_by_role("link", name=kind, exact=True)).first
    row.locator(f".badge.{status}").wait_for(timeout=JOB_CEILING_MS)


def all_thumbnails_loaded(page, count: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#shots img.thumb')];"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=count,
        timeout=JOB_CEILING_MS,
    )


def test_a_bad_token_shows_the_apis_sentence(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "not-the-token", expect_success=False)
    flash = page.locator("#flash")
    flash.wait_for()
    assert "token" in flash.inner_text().lower()
    assert page.get_by_label("API token").is_visible()  # still on the sign-in page
    screenshot(page, "signin-bad-token")


def test_review_a_cut_from_upload_to_final_video(page, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = make_indexed_movie(
        tmp_path / "media" / "A001C001.mov", frames=96, rate=Fraction(24), size=(320, 180), start_timecode="01:00:00:00"
    )
    v1 = write_otio(
        tmp_path / "reel1.otio",
        [clip("sh010", plate, 0, 12), clip("sh020", plate, 20, 24), clip("sh030", plate, 60, 30)],
    )
    sign_in(page)
    page.get_by_role("heading", name="Cuts").wait_for()
    publish(page, v1, "web", "reel1")
    cut_heading(page, "web / reel1 v001")
    wait_for_job(page, "ingest cut")
    all_thumbnails_loaded(page, 3)
    cards = page.locator("article.shot")
    assert cards.count() == 3
    assert "01:00:00:00" in cards.first.inner_text()  # source timecode of sh010's first frame
    page.locator(".contact-sheet img").wait_for()
    screenshot(page, "cut")

    # A second version: sh020 trimmed, sh030 omitted, sh040 new.
    other = make_indexed_movie(
        tmp_path / "media" / "B001C001.mov", frames=24, rate=Fraction(24), size=(320, 180), start_timecode="01:00:00:00"
    )
    v2 = write_otio(
        tmp_path / "reel1_v2.otio",
        [clip("sh010", plate, 0, 12), clip("sh020", plate, 22, 20), clip("sh040", other, 4, 10)],
    )
    publish(page, v2, "web", "reel1")
    cut_heading(page, "web / reel1 v002")
    wait_for_job(page, "ingest cut")
    all_thumbnails_loaded(page, 3)
    page.reload()  # the version list of the diff form is read when the page opens
    page.get_by_label("Compare with").select_option(label="v001")
    page.get_by_role("button", name="Show diff").click()
    diff = page.locator("table.diff")
    diff.wait_for()
    statuses = diff.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert sorted(statuses) == sorted(["no_change", "cut_change", "omitted", "new"]), statuses
    assert "head trimmed 2 frames" in diff.inner_text()
    page.wait_for_function("() => [...document.querySelectorAll('table.diff img')].every(i => i.naturalWidth > 0)")
    screenshot(page, "diff")

    page.get_by_label("Resolution").select_option("160x90")
    page.get_by_label("Preset").select_option("ultrafast")
    page.get_by_label("Audio").uncheck()  # the generated plates have no sound
    page.get_by_role("button", name="Render final video").click()
    wait_for_job(page, "final video")
    page.wait_for_function(
        "() => { const v = document.querySelector('#player video'); return v && v.readyState >= 2; }",
        timeout=JOB_CEILING_MS,
    )
    duration = page.locator("#player video").evaluate("v => v.duration")
    assert abs(duration - (12 + 20 + 10) / 24) < 0.1, duration
    page.locator("#player video").evaluate("v => { v.currentTime = v.duration / 2; }")  # scrubbing
    page.wait_for_function(
        "() => { const v = document.querySelector('#player video'); return !v.seeking && v.readyState >= 2; }"
    )
    screenshot(page, "final-video")

    page.goto("/app/#/jobs")
    page.get_by_role("heading", name="Jobs").wait_for()
    # The heading is drawn before the list arrives: wait for the rows themselves.
    page.locator("table.jobs tbody tr").nth(2).wait_for()
    assert page.locator("table.jobs tbody tr").count() >= 3
    screenshot(page, "jobs")


def test_cancel_a_running_job(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = make_indexed_movie(tmp_path / "media" / "long.mov", frames=240, rate=Fraction(24), size=(320, 180))
    # Shots with different source ranges: each is its own segment to encode, so the encode runs a while.
    cut = write_otio(tmp_path / "long.otio", [clip(f"sh{i:03d}", plate, i * 10, 200) for i in range(4)])
    sign_in(page)
    publish(page, cut, "web", "long")
    cut_heading(page, "web / long v001")
    wait_for_job(page, "ingest cut")
    page.get_by_label("Resolution").select_option("1920x1080")
    page.get_by_label("Preset").select_option("medium")
    page.get_by_label("Audio").uncheck()
    page.get_by_role("button", name="Render final video").click()
    page.get_by_role("link", name="final video", exact=True).first.click()
    page.get_by_role("heading", name="Job: final video").wait_for()
    # Dagster can only terminate a run once it has started.
    page.locator(".badge.running").first.wait_for(timeout=JOB_CEILING_MS)
    page.get_by_role("button", name="Cancel").click()
    page.locator(".badge.cancelled").first.wait_for(timeout=JOB_CEILING_MS)
    assert page.get_by_role("button", name="Cancel").is_hidden()
    screenshot(page, "job-cancelled")


def test_api_errors_and_failed_jobs_show_their_sentences(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    # An API error: not a timeline at all.
    junk = tmp_path / "notes.otio"
    junk.write_text("this is not a timeline")
    publish(page, junk, "web", "junk")
    flash = page.locator("#flash")
    flash.wait_for(timeout=JOB_CEILING_MS)  # the upload is parsed in a child process first
    # The API's own sentence (422 unreadable_timeline), shown as it was answered.
    assert flash.inner_text().startswith("notes.otio could not be read as otio_json: ")
    screenshot(page, "api-error")

    # A failed job: an EDL of audio only is a readable timeline with no shots.
    sound = tmp_path / "multi_audio.edl"
    shutil.copyfile(CORPUS / "multi_audio.edl", sound)
    publish(page, sound, "web", "sound", rate="25")
    cut_heading(page, "web / sound v001")
    wait_for_job(page, "ingest cut", status="failed")
    sentence = "the timeline has no video track (it holds 2 audio track(s) only); there are no shots to extract"
    page.locator("table.jobs td.error", has_text=sentence).wait_for()
    page.get_by_role("link", name="ingest cut", exact=True).first.click()
    page.locator("#job-error").wait_for()
    assert page.locator("#job-error").inner_text() == sentence
    screenshot(page, "job-failed")
