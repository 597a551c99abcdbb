// Slideshows: open one by its id; its assets (upload by file input or drop), its scenes, render
// options, renders followed live over the job event stream, and the video played in the page.

import { forgetMedia, request } from "../api.js";
import { acceptFiles, busy, bytes, field, flash, h, jobTable, replace, video } from "../dom.js";
import { scenesEditor, storedScenes } from "./scenes.js";

const SUBDIRS = ["images", "voiceovers", "music"];
const PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];
const ID_PATTERN = "[A-Za-z0-9_\\-]{1,64}";

export async function slideshowsPage({ main, signal, navigate }) {
  const id = h("input", { id: "slideshow-id", name: "id", required: true, pattern: ID_PATTERN, placeholder: "trip-2026", "aria-describedby": "slideshow-id-hint" });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Open a slideshow" },
    h("div", { class: "hinted" }, field("Slideshow id", id), h("span", { id: "slideshow-id-hint", class: "muted" }, "1-64 letters, digits, _ or -; a new id starts a new slideshow")),
    h("button", { type: "submit" }, "Open"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(`#/slideshows/${id.value.trim()}`);
  });
  const recent = h("ul", { id: "slideshow-list" }, h("li", { class: "muted" }, "Loading…"));
  replace(main, h("h1", {}, "Slideshows"), form, h("h2", {}, "Rendered recently"), recent);
  // There is no list of slideshows in the API: those with renders are known from their jobs.
  const page = await request("/v1/jobs?kind=slideshow_render&limit=200", { signal });
  const ids = [...new Set(page.items.map((job) => job.params?.slideshow_id).filter(Boolean))];
  replace(recent, ids.length ? ids.map((s) => h("li", {}, h("a", { href: `#/slideshows/${s}` }, s))) : h("li", { class: "muted" }, "None yet."));
}

// The uploaded files by folder (the API lists them by folder, then name).
async function assetNames(slideshowId, signal) {
  const { files } = await request(`/v1/slideshows/${slideshowId}/assets`, { signal });
  const byDir = Object.fromEntries(SUBDIRS.map((d) => [d, []]));
  for (const file of files) byDir[file.subdir]?.push({ name: file.name, size: file.size });
  return byDir;
}

function assetsSection(slideshowId, signal) {
  const subdir = h("select", { id: "asset-subdir", name: "subdir" }, SUBDIRS.map((d) => h("option", { value: d }, d)));
  const input = h("input", { id: "asset-files", name: "files", type: "file", multiple: true, accept: "image/*,audio/*" });
  const log = h("ul", { class: "uploads", "aria-live": "polite" });
  const listing = h("div", { id: "asset-list" });
  const datalists = h("div", {}, SUBDIRS.map((d) => h("datalist", { id: `asset-${d}` })));
  const zone = h(
    "div",
    { class: "dropzone", id: "asset-drop" },
    field("Folder", subdir),
    " ",
    h("p", {}, "Drop files here, or "),
    field("Choose files to upload", input),
    log,
  );
  async function refresh() {
    const byDir = await assetNames(slideshowId, signal);
    replace(
      listing,
      SUBDIRS.map((d) =>
        h("p", { "data-subdir": d }, h("span", { class: "muted" }, `${d}/ `), byDir[d].length ? byDir[d].map((f) => `${f.name} (${bytes(f.size)})`).join(", ") : h("span", { class: "muted" }, "none")),
      ),
    );
    for (const d of SUBDIRS) replace(datalists.querySelector(`#asset-${d}`), byDir[d].map((f) => h("option", { value: f.name })));
  }
  // One request for the batch: the API stores all of it or, with its sentence, none of it.
  async function send(files) {
    if (!files.length) return;
    flash(null);
    const line = h("li", {}, `${files.map((f) => f.name).join(", ")}: uploading to ${subdir.value}/…`);
    log.append(line);
    const body = new FormData();
    for (const file of files) body.append("files", file);
    body.set("subdir", subdir.value);
    try {
      const answer = await request(`/v1/slideshows/${slideshowId}/assets`, { method: "POST", form: body });
      replace(line, answer.files.map((f) => `${f.subdir}/${f.name}: ${f.stored}`).join(", "));
    } catch (error) {
      replace(line, h("span", { class: "error" }, error.message));
      flash(error.message);
    }
    await refresh();
  }
  acceptFiles(zone, input, send);
  return { section: h("section", { "aria-labelledby": "assets-title" }, h("h2", { id: "assets-title" }, "Assets"), zone, listing, datalists), refresh };
}

// Only what is filled in is sent: the rest takes the server's defaults.
function renderOptions() {
  const c = {
    fps: h("input", { id: "render-fps", inputmode: "decimal", placeholder: "default", size: 8 }),
    resolution: h("input", { id: "render-resolution", placeholder: "default, e.g. 1280x720", size: 12 }),
    crf: h("input", { id: "render-crf", type: "number", min: 0, max: 51, placeholder: "default" }),
    preset: h("select", { id: "render-preset" }, h("option", { value: "" }, "default"), PRESETS.map((p) => h("option", { value: p }, p))),
    xfade: h("input", { id: "render-xfade", inputmode: "decimal", placeholder: "default", size: 6 }),
    min_shot: h("input", { id: "render-min-shot", inputmode: "decimal", placeholder: "default", size: 6 }),
    max_shot: h("input", { id: "render-max-shot", inputmode: "decimal", placeholder: "default", size: 6 }),
    music: h("input", { id: "render-music", list: "asset-music", placeholder: "none" }),
    ducking: h("input", { id: "render-ducking", type: "checkbox" }),
    output_name: h("input", { id: "render-output", value: "video.mp4", required: true }),
  };
  const group = h(
    "div",
    { class: "toolbar", role: "group", "aria-label": "Render options" },
    field("Frame rate", c.fps),
    field("Resolution", c.resolution),
    field("CRF", c.crf),
    field("Preset", c.preset),
    field("Crossfade (s)", c.xfade),
    field("Shortest scene (s)", c.min_shot),
    field("Longest scene (s)", c.max_shot),
    field("Music", c.music),
    field("Duck music under voice", c.ducking),
    field("Output file", c.output_name),
  );
  const number = (v) => (Number.isNaN(Number(v)) ? v : Number(v)); // the API names a bad value
  function body() {
    const options = {};
    for (const key of ["fps", "crf", "xfade", "min_shot", "max_shot"]) if (c[key].value.trim()) options[key] = number(c[key].value.trim());
    if (typeof options.fps === "number" && !Number.isInteger(options.fps)) options.fps = String(options.fps);
    for (const key of ["resolution", "preset", "music"]) if (c[key].value.trim()) options[key] = c[key].value.trim();
    if (c.ducking.checked) options.ducking = true;
    return { output_name: c.output_name.value.trim(), render_options: options };
  }
  return { group, body };
}

const outputOf = (slideshowId, job) => `/v1/artifacts/slideshows/${slideshowId}/output/${job.params?.output_name || "video.mp4"}`;

export async function slideshowPage({ main, signal }, slideshowId) {
  const player = h("div", { class: "player", id: "player" });
  function play(job) {
    const path = outputOf(slideshowId, job);
    forgetMedia(path); // the same name is written again by each render
    replace(player, h("h2", {}, `Render ${job.params?.partition_key?.split(".")[1] || ""}`), video(path, `Slideshow ${slideshowId}`));
  }
  const jobs = jobTable(signal, (last) => last.status === "succeeded" && play(last));
  const assets = assetsSection(slideshowId, signal);
  const options = renderOptions();
  const start = h("button", { type: "button", id: "start-render" }, "Render");
  start.addEventListener("click", () => {
    flash(null);
    return busy(start, async () => {
      const answer = await request(`/v1/slideshows/${slideshowId}/renders`, { method: "POST", json: options.body() });
      jobs.track(answer.job);
    });
  });
  const [stored, recent] = await Promise.all([storedScenes(slideshowId, signal), request("/v1/jobs?kind=slideshow_render&limit=200", { signal })]);
  replace(
    main,
    h("p", {}, h("a", { href: "#/slideshows" }, "← Slideshows")),
    h("h1", {}, `Slideshow ${slideshowId}`),
    assets.section,
    h("h2", {}, "Scenes"),
    scenesEditor(slideshowId, stored),
    h("h2", {}, "Render"),
    options.group,
    h("div", { class: "toolbar" }, start),
    jobs.table,
    player,
  );
  await assets.refresh();
  const mine = recent.items.filter((job) => job.params?.slideshow_id === slideshowId).slice(0, 10);
  for (const job of mine) jobs.track(job);
  const done = mine.find((job) => job.status === "succeeded");
  if (done) play(done);
}
