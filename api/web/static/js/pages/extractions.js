// Frame extractions: submit a batch of videos with the frames to take, the recent batches, and
// one batch followed live, ending in a gallery of its frames with their exact positions.

import { request } from "../api.js";
import { badge, busy, field, flash, h, image, jobTable, openLink, percent, replace, when } from "../dom.js";

const MODES = {
  frames: ["Frame indices", "Indices counted from 0, separated by commas: 3, 17"],
  timestamps: ["Timestamps or timecodes", "Seconds or HH:MM:SS:FF (HH:MM:SS;FF drop-frame), by commas: 1.5, 00:00:03:12"],
  interval: ["Every N seconds", "One frame every this many seconds: 2"],
  scenes: ["Scene cuts", "The first frame of each shot; a cut threshold (0..255) may be given: 30"],
  best: ["Best frames", "How many of the sharpest, best exposed, distinct frames: 5"],
};

// One line of the sources box: a URL as it is, an absolute path as a file:// URI.
function sourceOf(line) {
  if (line.startsWith("/")) return `file://${line.split("/").map(encodeURIComponent).join("/")}`;
  return line;
}

const list = (text) => text.split(",").map((v) => v.trim()).filter(Boolean);
const numberOr = (v) => (v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v); // the API names what is wrong

function framesSpec(mode, text) {
  const values = list(text);
  if (mode === "frames") return { mode, frames: values.map(numberOr) };
  if (mode === "timestamps") return { mode, timestamps: values.map((v) => (/^\d+(\.\d+)?$/.test(v) ? Number(v) : v)) };
  if (mode === "interval") return { mode, every_seconds: numberOr(text.trim()) };
  if (mode === "best") return { mode, count: numberOr(text.trim()) };
  return text.trim() ? { mode, threshold: numberOr(text.trim()) } : { mode };
}

// "" none, "auto", "W:H" an aspect, "x,y,width,height" a box.
function cropSpec(text) {
  const value = text.trim();
  if (!value) return undefined;
  if (value === "auto") return "auto";
  if (value.includes(":")) return { aspect: value };
  const [x, y, width, height] = list(value).map(numberOr);
  return { x, y, width, height };
}

function submitForm(navigate) {
  const sources = h("textarea", { id: "ex-sources", name: "sources", rows: 3, cols: 70, required: true, placeholder: "file:///mnt/media/A001C001.mov" });
  const mode = h("select", { id: "ex-mode", name: "mode" }, Object.entries(MODES).map(([value, [text]]) => h("option", { value }, text)));
  const hint = h("span", { id: "ex-which-hint", class: "muted" });
  const which = h("input", { id: "ex-which", name: "which", "aria-describedby": "ex-which-hint" });
  const crop = h("input", { id: "ex-crop", name: "crop", placeholder: "none", "aria-describedby": "ex-crop-hint" });
  const format = h("select", { id: "ex-format", name: "format" }, ["jpg", "png", "webp"].map((f) => h("option", { value: f }, f)));
  const width = h("input", { id: "ex-width", name: "width", type: "number", min: 16, step: 1, placeholder: "as decoded" });
  const button = h("button", { type: "submit" }, "Extract");
  const showHint = () => replace(hint, MODES[mode.value][1]);
  mode.addEventListener("change", showHint);
  showHint();
  const form = h(
    "form",
    { class: "extract", "aria-label": "Extract frames" },
    h("p", {}, field("Videos (one a line: a path or file:// URI under the media roots, or an http(s) URL)", sources)),
    h("div", { class: "inline" }, field("Frames by", mode), h("div", { class: "hinted" }, field("Which frames", which), hint)),
    h(
      "div",
      { class: "inline" },
      h("div", { class: "hinted" }, field("Crop", crop), h("span", { id: "ex-crop-hint", class: "muted" }, "none · auto (black borders) · 1:1 · x,y,width,height")),
      field("Format", format),
      field("Width (px)", width),
      button,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    flash(null);
    const body = {
      items: sources.value.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => ({ source: sourceOf(line) })),
      frames: framesSpec(mode.value, which.value),
      crop: cropSpec(crop.value),
      format: format.value,
      width: width.value.trim() ? Number(width.value) : undefined,
    };
    await busy(button, async () => {
      const answer = await request("/v1/extractions", { method: "POST", json: body });
      navigate(`#/extractions/${answer.extraction.id}`);
    });
  });
  return form;
}

export async function extractionsPage({ main, signal, navigate }) {
  const body = h("tbody");
  replace(
    main,
    h("h1", {}, "Extractions"),
    submitForm(navigate),
    h("h2", {}, "Recent extractions"),
    h("table", { class: "extractions" }, h("thead", {}, h("tr", {}, ["Extraction", "Status", "Progress", "Videos", "Started"].map((c) => h("th", {}, c)))), body),
  );
  const page = await request("/v1/jobs?kind=frame_extraction&limit=30", { signal });
  replace(
    body,
    page.items.length
      ? page.items.map((job) =>
          h(
            "tr",
            {},
            h("td", {}, job.subject_id ? h("a", { href: `#/extractions/${job.subject_id}`, class: "mono" }, job.subject_id) : h("a", { href: `#/jobs/${job.id}` }, "its job")),
            h("td", {}, badge(job.status)),
            h("td", {}, `${percent(job)}%`),
            h("td", {}, job.params?.items ?? ""),
            h("td", { class: "muted" }, when(job.created_at)),
          ),
        )
      : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No extraction yet.")),
  );
}

function frameCard(frame, item) {
  const box = frame.crop ? `${frame.crop.x},${frame.crop.y} ${frame.crop.width}x${frame.crop.height}` : "whole frame";
  const score = frame.score ? Object.entries(frame.score).map(([k, v]) => `${k} ${Math.round(v * 100) / 100}`).join(", ") : null;
  const line = (name, value, cls) => h("div", {}, h("span", { class: "muted" }, `${name} `), h("span", { class: cls }, value));
  return h(
    "article",
    { class: "card frame", "data-index": frame.index, "aria-label": `Frame ${frame.index} of ${item.item}` },
    image(frame.url, `Frame ${frame.index} (${frame.timecode}) of ${item.source}`, "frame"),
    h(
      "div",
      { class: "body" },
      h("div", { class: "name" }, `Frame ${frame.index}`),
      line("Timecode", frame.timecode, "mono timecode"),
      line("Time", `${frame.seconds_exact} s (${frame.seconds.toFixed(3)} s)`, "mono"),
      line("pts", `${frame.pts} (time base ${frame.time_base})`, "mono"),
      line("Crop", box, "mono crop"),
      line("Size", `${frame.width}x${frame.height}`, "mono"),
      line("Asked as", frame.requested.join(", ")),
      score ? line("Score", score) : null,
    ),
  );
}

function itemSection(item) {
  const stream = item.stream ? Object.entries(item.stream).map(([k, v]) => `${k} ${v}`).join(" · ") : null;
  return h(
    "section",
    { class: "extraction-item", "data-item": item.item, "aria-labelledby": `${item.item}-title` },
    h("h3", { id: `${item.item}-title` }, `${item.item}: `, h("span", { class: "mono" }, item.source), " ", badge(item.status)),
    item.error ? h("p", { class: "error" }, item.error) : null,
    item.warnings.length ? h("ul", { class: "warnings" }, item.warnings.map((w) => h("li", {}, w))) : null,
    stream ? h("p", { class: "muted mono" }, stream) : null,
    item.frames.length ? h("div", { class: "grid frames" }, item.frames.map((frame) => frameCard(frame, item))) : null,
  );
}

export async function extractionPage({ main, signal }, id) {
  const summary = h("div", { id: "extraction-summary", "aria-live": "polite" });
  const gallery = h("div", { id: "gallery" });
  let drawing = null;
  let again = false;
  // Job events come faster than a batch is re-read: at most one read in flight, then one more.
  async function refresh() {
    if (drawing) {
      again = true;
      return drawing;
    }
    drawing = (async () => {
      do {
        again = false;
        draw(await request(`/v1/extractions/${id}`, { signal }));
      } while (again && !signal.aborted);
    })();
    try {
      await drawing;
    } finally {
      drawing = null;
    }
  }
  function draw(extraction) {
    const c = extraction.counts;
    replace(
      summary,
      h("p", {}, badge(extraction.status), ` ${c.frames} frames from ${c.succeeded} of ${c.items} videos`, c.failed ? `, ${c.failed} failed` : "", " ", extraction.manifest_url ? openLink(extraction.manifest_url, "manifest (JSON)") : null),
      extraction.error ? h("p", { class: "error" }, extraction.error) : null,
    );
    replace(gallery, extraction.items.map(itemSection));
  }
  const jobs = jobTable(signal, refresh, () => refresh().catch((error) => error.name !== "AbortError" && flash(error.message)));
  const first = await request(`/v1/extractions/${id}`, { signal });
  replace(main, h("p", {}, h("a", { href: "#/extractions" }, "← Extractions")), h("h1", {}, `Extraction ${id}`), summary, jobs.table, h("h2", {}, "Frames"), gallery);
  draw(first);
  jobs.track(first.job);
}
