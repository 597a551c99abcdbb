"""The review web app in a real browser (Debian's Chromium driven by Playwright) against a real
`media-pipeline up`: sign in, publish, watch the ingest, see thumbnails, diff, play, cancel, and
the API's sentences on the page for a bad token, an API error and a failed job; the media
library (upload by file input and by drop, filters, preview, edits inline and as a job, lineage),
frame extractions (submit, follow, the gallery's frames and positions), slideshows (assets by
input and by drop, scenes and their 422 sentence, a render followed live and played) and
compositions (segments added, reordered by drag, rendered with cache misses then hits, played).

Screenshots of each page go to `.test-artifacts/screenshots/` at the repository root.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import CORPUS, REPO
from media_pipeline_tests.slideshow_media import COLOURS, make_image
from media_pipeline_tests.test_api_support import clip, write_otio
from media_pipeline_tests.test_stack_api import AUTH, TOKEN, Stack
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
            yield Stack(process, home, api, tmp_path_factory.getbasetemp())
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
    # The thumbnails are lazy images: Chromium loads them only once they are near the viewport,
    # and how far below the fold the diff lands depends on the layout; look at it as a user would.
    diff.scroll_into_view_if_needed()
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


def cards_are(page, selector: str, types: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Wait until the cards under `selector` are of these types, in this order."""
    page.wait_for_function(
        "([sel, types]) => JSON.stringify([...document.querySelectorAll(sel)].map(c => c.dataset.type))"
        " === JSON.stringify(types)",
        arg=[selector, types],
    )


def drop(page, selector: str, path: Path, mime: str) -> None:  # type: ignore[no-untyped-def]
    """Drop a file onto an element, as a drag from the desktop delivers it."""
    page.locator(selector).evaluate(
        """(zone, [name, type, data]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([Uint8Array.from(atob(data), c => c.charCodeAt(0))], name, { type }));
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [path.name, mime, base64.b64encode(path.read_bytes()).decode()],
    )


def shown_pixels(locator) -> Image.Image:  # type: ignore[no-untyped-def]
    """The picture an <img> shows, at its natural size (read back through a canvas)."""
    url = locator.evaluate(
        "img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;"
        " c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png'); }"
    )
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def local_day(page, days_from_today: int) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "n => { const d = new Date(); d.setDate(d.getDate() + n); return d.toLocaleDateString('en-CA'); }",
        days_from_today,
    )


def test_media_library_upload_filter_edit_and_lineage(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Left half red, right half blue: a crop of the right half shows only blue.
    pixels = np.zeros((64, 128, 3), np.uint8)
    pixels[:, :64, 0] = 255
    pixels[:, 64:, 2] = 255
    photo = tmp_path / "photo.png"
    Image.fromarray(pixels).save(photo)
    clip = make_indexed_movie(tmp_path / "clip.mp4", frames=24, rate=Fraction(24), size=(160, 90))
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
    page.get_by_role("heading", name="Library", exact=True).wait_for()

    page.get_by_label("Choose files to upload").set_input_files(str(photo))
    page.locator(".uploads li", has_text="photo.png: added as media").wait_for(timeout=JOB_CEILING_MS)
    drop(page, "#drop-zone", clip, "video/mp4")
    page.locator(".uploads li", has_text="clip.mp4: added as media").wait_for(timeout=JOB_CEILING_MS)
    cards_are(page, "#media-list article.media", ["video", "image"])  # newest first
    page.wait_for_function("() => document.querySelector('#media-list img.preview')?.naturalWidth > 0")
    screenshot(page, "library")

    page.get_by_label("Type").select_option("video")
    cards_are(page, "#media-list article.media", ["video"])
    page.get_by_label("Type").select_option("image")
    cards_are(page, "#media-list article.media", ["image"])
    page.get_by_label("Uploaded from").fill(local_day(page, 1))
    page.locator("#media-list", has_text="No media matches").wait_for()
    page.get_by_label("Uploaded from").fill(local_day(page, 0))
    page.get_by_label("Uploaded until (inclusive)").fill(local_day(page, 0))
    cards_are(page, "#media-list article.media", ["image"])

    page.locator("#media-list").get_by_role("link", name="photo.png").click()
    page.get_by_role("heading", name="photo.png").wait_for()
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth === 128")
    page.locator("#derivatives", has_text="Nothing has been made").wait_for()
    page.get_by_label("Crop X").fill("64")
    page.get_by_label("Crop width").fill("64")
    page.get_by_label("Crop height").fill("64")
    page.get_by_label("Resize width").fill("32")
    page.get_by_role("button", name="Apply edit").click()
    page.locator("#edit-result", has_text="Made media").wait_for()
    page.locator("#derivatives article.media").wait_for()
    page.locator("#edit-result").get_by_role("link", name="photo-edit.png").click()

    page.locator("#lineage", has_text="photo.png (media").wait_for()
    recipe = page.locator("#lineage .recipe li").all_inner_texts()
    assert recipe[:2] == ["crop: x 64, y 0, width 64, height 64", "resize: width 32, fit contain"], recipe
    assert "inline, by the API" in page.locator("#lineage").inner_text()
    assert "32x32" in page.locator("#details").inner_text()
    preview = page.locator("#preview img")
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth === 32")
    red, _, blue = shown_pixels(preview).getpixel((16, 16))
    assert blue > 200 and red < 50, (red, blue)  # the right half, so the crop came first
    screenshot(page, "media-item")

    # A video edit is a job: followed on the page to its new item.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
    page.locator("#media-list").get_by_role("link", name="clip.mp4").click()
    page.get_by_role("heading", name="clip.mp4").wait_for()
    page.get_by_label("Trim start").fill("3")
    page.get_by_label("Trim end").fill("15")
    page.get_by_role("button", name="Apply edit").click()
    wait_for_job(page, "media edit")
    page.locator("#edit-result", has_text="Made media").wait_for()
    made = page.locator("#edit-result article.media")
    assert "12 frames" in made.inner_text()
    page.locator("#derivatives article.media").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#preview video'); return v && v.readyState >= 2; }"
    )
    screenshot(page, "media-video-edit")


def test_extract_frames_and_see_them_in_the_gallery(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Under pytest's temp folder: the stack's media roots.
    movie = make_indexed_movie(tmp_path / "media" / "reel.mov", frames=30, rate=Fraction(24), size=(320, 180))
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Extractions").click()
    page.get_by_role("heading", name="Extractions", exact=True).wait_for()
    page.get_by_label("Videos").fill(str(movie))
    page.get_by_label("Frames by").select_option("frames")
    page.get_by_label("Which frames").fill("3, 17")
    page.get_by_label("Format").select_option("png")
    page.get_by_role("button", name="Extract").click()
    page.get_by_role("heading", name="Extraction ex_").wait_for(timeout=JOB_CEILING_MS)
    wait_for_job(page, "frame extraction")
    page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('#gallery article.frame img')];"
        " return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth === 320); }",
        timeout=JOB_CEILING_MS,
    )
    cards = page.locator("#gallery article.frame")
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.index)") == ["3", "17"]
    assert cards.locator(".timecode").all_inner_texts() == ["00:00:00:03", "00:00:00:17"]
    assert cards.locator(".crop").all_inner_texts() == ["0,0 320x180"] * 2
    assert "1/8 s" in cards.first.inner_text()  # frame 3 at 24 fps, exactly
    # The pictures shown are those frames (each frame of the movie shows its own index).
    assert [read_index(shown_pixels(cards.nth(n).locator("img"))) for n in range(2)] == [3, 17]
    assert "2 frames from 1 of 1 videos" in page.locator("#extraction-summary").inner_text()
    screenshot(page, "extraction")

    # A bad source: the API's sentence on the page, and nothing submitted.
    page.get_by_role("link", name="← Extractions").click()
    page.get_by_label("Videos").fill("ftp://example.invalid/v.mp4")
    page.get_by_label("Which frames").fill("0")
    page.get_by_role("button", name="Extract").click()
    flash = page.locator("#flash")
    flash.wait_for()
    assert "file:///absolute/path" in flash.inner_text(), flash.inner_text()
    screenshot(page, "extractions-refused")


def video_plays(page) -> None:  # type: ignore[no-untyped-def]
    """The player's video, not one marked as an earlier render's, can show its frames."""
    page.wait_for_function(
        "() => { const v = document.querySelector('#player video:not([data-earlier])');"
        " return v && v.readyState >= 2; }",
        timeout=JOB_CEILING_MS,
    )


def test_slideshow_assets_scenes_render_and_play(page, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    images = [make_image(tmp_path / f"{name}.png", colour) for name, colour in zip("abc", COLOURS, strict=False)]
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Slideshows").click()
    page.get_by_label("Slideshow id").fill("webshow")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("heading", name="Slideshow webshow").wait_for()

    page.get_by_label("Folder").select_option("images")
    page.get_by_label("Choose files to upload").set_input_files([str(p) for p in images[:2]])
    page.locator(".uploads li", has_text="images/a.png: new, images/b.png: new").wait_for(timeout=JOB_CEILING_MS)
    drop(page, "#asset-drop", images[2], "image/png")
    page.locator(".uploads li", has_text="images/c.png: new").wait_for(timeout=JOB_CEILING_MS)
    page.locator("#asset-list [data-subdir=images]", has_text="c.png").wait_for()
    assert "a.png" in page.locator("#asset-list [data-subdir=images]").inner_text()

    scenes = page.locator("fieldset.scene")
    scenes.nth(0).get_by_label("Images (1-3, by commas)").fill("a.png, b.png")
    scenes.nth(0).get_by_label("Duration (s)").fill("1")
    scenes.nth(0).get_by_label("Caption").fill("Hello")
    page.get_by_role("button", name="Add scene").click()
    scenes.nth(1).get_by_label("Duration (s)").fill("1")  # and no image: refused
    page.get_by_role("button", name="Save scenes").click()
    flash = page.locator("#flash")
    flash.wait_for()
    assert flash.inner_text().startswith("invalid request: scenes.1.images: "), flash.inner_text()
    assert "images: " in scenes.nth(1).locator(".scene-error").inner_text()
    screenshot(page, "slideshow-bad-scene")
    scenes.nth(1).get_by_label("Images (1-3, by commas)").fill("c.png")
    page.get_by_role("button", name="Save scenes").click()
    page.locator("#scenes-status", has_text="Saved 2 scenes.").wait_for()
    assert flash.is_hidden()

    page.get_by_label("Frame rate").fill("25")
    page.get_by_label("Resolution").fill("320x180")
    page.get_by_label("CRF").fill("30")
    page.get_by_label("Preset").select_option("ultrafast")
    page.get_by_label("Crossfade (s)").fill("0.2")
    page.get_by_label("Shortest scene (s)").fill("1")
    page.get_by_label("Longest scene (s)").fill("2")
    page.get_by_role("button", name="Render").click()
    page.locator("table.jobs progress").first.wait_for()
    wait_for_job(page, "slideshow render")
    video_plays(page)
    assert page.locator("#player video").evaluate("v => v.videoWidth") == 320
    screenshot(page, "slideshow")
    stored = stack.api.get("/v1/artifacts/slideshows/webshow/scenes.json", headers=AUTH).json()
    assert [s["images"] for s in stored["scenes"]] == [["a.png", "b.png"], ["c.png"]]


def segment_order(stack: Stack, composition_id: str) -> list[int]:
    body = stack.api.get(f"/v1/compositions/{composition_id}", headers=AUTH).json()
    return [s["id"] for s in body["segments"]]


def timeline_is(page, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#timeline li.segment')]"
        ".map(li => Number(li.dataset.segment))) === JSON.stringify(ids)",
        arg=ids,
    )


def segment_cells(page, column: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(f"#segment-status tbody td.{column}").all_inner_texts()


def render_composition(page, job_rows: int) -> None:  # type: ignore[no-untyped-def]
    page.evaluate("() => document.querySelector('#player video')?.setAttribute('data-earlier', '')")
    page.get_by_role("button", name="Render", exact=True).click()
    page.locator("table.jobs tbody tr").nth(job_rows - 1).wait_for()
    page.locator("table.jobs tbody tr").first.locator(".badge.succeeded").wait_for(timeout=JOB_CEILING_MS)
    video_plays(page)


def test_composition_timeline_reorder_render_and_cache(page, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compositions").click()
    page.get_by_label("Name").fill("web promo")
    page.get_by_label("Resolution (WIDTHxHEIGHT)").fill("160x90")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="web promo").wait_for()
    composition_id = page.url.rsplit("/", 1)[1]

    form = page.get_by_role("form", name="Add a segment")
    for frames, source, prompt in [(6, "gradients", "first"), (8, "title", "second")]:
        form.get_by_label("Generator").select_option("local")
        form.get_by_label("Frames").fill(str(frames))
        form.get_by_label("Prompt").fill(prompt)
        form.get_by_label("Params (JSON)").fill(f'{{"source": "{source}"}}')
        form.get_by_role("button", name="Add segment").click()
        page.locator("#timeline li.segment", has_text=f"{frames} frames").wait_for()
    first, second = segment_order(stack, composition_id)

    # Bad params: the API's sentence, and the timeline unchanged.
    segment = page.locator(f"#timeline li[data-segment='{second}']")
    segment.get_by_label("Params (JSON)").fill('{"source": "plasma"}')
    segment.get_by_role("button", name="Save segment 2").click()
    page.locator("#flash", has_text="params.source").wait_for()
    segment.get_by_label("Params (JSON)").fill('{"source": "title", "text_color": "#ffcc00"}')
    segment.get_by_label("Prompt").fill("second, edited")
    segment.get_by_role("button", name="Save segment 2").click()
    page.locator("#timeline li.segment").nth(1).get_by_label("Prompt").filter(has_text="second, edited").wait_for()
    edited = stack.api.get(f"/v1/segments/{second}", headers=AUTH).json()
    assert (edited["prompt"], edited["params"]["text_color"]) == ("second, edited", "#ffcc00"), edited
    assert page.locator("#flash").is_hidden()

    handle = page.locator(f"#timeline li[data-segment='{second}'] .handle")
    handle.drag_to(page.locator(f"#timeline li[data-segment='{first}']"))
    timeline_is(page, [second, first])
    assert segment_order(stack, composition_id) == [second, first]
    # And back by keyboard, then again by the buttons.
    page.get_by_role("button", name="Move segment 1 down").focus()
    page.keyboard.press("Enter")
    timeline_is(page, [first, second])
    assert segment_order(stack, composition_id) == [first, second]
    page.get_by_role("button", name="Move segment 2 up").click()
    timeline_is(page, [second, first])
    assert segment_order(stack, composition_id) == [second, first]
    screenshot(page, "composition-timeline")
    form.get_by_role("button", name="Add segment").click()  # a third, to delete
    page.locator("#timeline li.segment").nth(2).wait_for()
    page.get_by_role("button", name="Delete segment 3").click()
    timeline_is(page, [second, first])
    assert segment_order(stack, composition_id) == [second, first]

    render_composition(page, 1)
    assert segment_cells(page, "status") == ["succeeded", "succeeded"]
    assert segment_cells(page, "cache") == ["miss", "miss"]
    size = page.locator("#player video").evaluate("v => [v.videoWidth, v.duration]")
    assert size[0] == 160 and abs(size[1] - (8 + 6) / 24) < 0.1, size
    screenshot(page, "composition-render")
    render_composition(page, 2)
    assert segment_cells(page, "cache") == ["hit", "hit"]
    assert segment_cells(page, "status") == ["reused", "reused"]
    screenshot(page, "composition-cached")
