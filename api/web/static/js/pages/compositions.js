// Compositions: create one, the list; one composition with its timeline of segments, renders
// followed live with each segment's status and cache hit or miss, and the video played.

import { allPages, forgetMedia, request } from "../api.js";
import { badge, busy, field, flash, h, jobTable, replace, video, when } from "../dom.js";
import { addSegmentForm, timeline } from "./timeline.js";

function createForm(navigate) {
  const name = h("input", { id: "composition-name", name: "name", required: true });
  const rate = h("input", { id: "composition-rate", name: "rate", value: "24", required: true, size: 10 });
  const resolution = h("input", { id: "composition-resolution", name: "resolution", value: "1280x720", required: true, size: 10 });
  const button = h("button", { type: "submit" }, "Create");
  const form = h(
    "form",
    { class: "inline", "aria-label": "Create a composition" },
    field("Name", name),
    field("Rate (fps, exact: 24, 30000/1001)", rate),
    field("Resolution (WIDTHxHEIGHT)", resolution),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    flash(null);
    await busy(button, async () => {
      const body = { name: name.value.trim(), rate: rate.value.trim(), resolution: resolution.value.trim() };
      const created = await request("/v1/compositions", { method: "POST", json: body });
      navigate(`#/compositions/${created.id}`);
    });
  });
  return form;
}

export async function compositionsPage({ main, signal, navigate }) {
  const body = h("tbody", {}, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Loading…")));
  replace(
    main,
    h("h1", {}, "Compositions"),
    createForm(navigate),
    h("h2", {}, "All compositions"),
    h("table", { class: "compositions" }, h("thead", {}, h("tr", {}, ["Composition", "Rate", "Resolution", "Segments", "Updated"].map((c) => h("th", {}, c)))), body),
  );
  const items = await allPages("/v1/compositions", { signal, max: 1000 });
  replace(
    body,
    items.length
      ? items.map((c) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/compositions/${c.id}` }, c.name)),
            h("td", { class: "mono" }, c.rate),
            h("td", { class: "mono" }, c.resolution),
            h("td", {}, `${c.segments.length} (${c.total_frames} frames)`),
            h("td", { class: "muted" }, when(c.updated_at)),
          ),
        )
      : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No composition yet.")),
  );
}

// Per segment of a render's job: status, cache hit or miss, progress, the provider's task, the error.
function segmentStatus(job) {
  const rows = (job.items || []).map((item) =>
    h(
      "tr",
      { "data-segment": item.id.replace(/^segment_/, "") },
      h("th", { scope: "row" }, item.name || item.id), // its place when the render started
      h("td", { class: "status" }, badge(item.status)),
      h("td", { class: "cache" }, item.cache ? badge(item.cache) : h("span", { class: "muted" }, "–")),
      h("td", {}, `${Math.floor((item.progress || 0) * 100)}%`),
      h("td", { class: "mono muted" }, item.task_id || ""),
      h("td", { class: "error" }, item.error || ""),
    ),
  );
  return [
    h("p", { class: "muted" }, `Segments of the render started ${when(job.created_at)}`),
    h(
      "table",
      { class: "items" },
      h("thead", {}, h("tr", {}, ["Segment", "Status", "Cache", "Progress", "Task", "Error"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Planning…"))),
    ),
  ];
}

const outputOf = (job) => {
  const [composition, render] = String(job.params?.partition_key || "").split(".");
  return render ? `/v1/artifacts/compositions/${composition}/output/${render}.mp4` : null;
};

export async function compositionPage({ main, signal }, id) {
  let composition = await request(`/v1/compositions/${id}`, { signal });
  const summary = h("p", { class: "muted", id: "composition-summary" });
  const status = h("div", { id: "segment-status", "aria-live": "polite" });
  const player = h("div", { class: "player", id: "player" });
  let watched = null; // the newest render's job: its segments are the ones shown
  const drawSummary = () => replace(summary, `Rate ${composition.rate} · ${composition.resolution} · ${composition.segments.length} segments · ${composition.total_frames} frames`);
  const line = timeline(composition, async (next) => {
    composition = next;
    line.draw(next);
    drawSummary();
  });
  function play(job) {
    const path = outputOf(job);
    if (!path) return;
    forgetMedia(path);
    replace(player, h("h2", {}, "Video"), video(path, `Video of ${composition.name}`));
  }
  const jobs = jobTable(
    signal,
    (last) => last.id === watched && last.status === "succeeded" && play(last),
    (job) => job.id === watched && job.items && replace(status, segmentStatus(job)),
  );
  const start = h("button", { type: "button", id: "start-render" }, "Render");
  start.addEventListener("click", () => {
    flash(null);
    return busy(start, async () => {
      const answer = await request(`/v1/compositions/${id}/renders`, { method: "POST", json: {} });
      watched = answer.job.id;
      jobs.track(answer.job);
    });
  });
  const generators = await request("/v1/generators", { signal });
  const refresh = async () => {
    composition = await request(`/v1/compositions/${id}`, { signal });
    line.draw(composition);
    drawSummary();
  };
  replace(
    main,
    h("p", {}, h("a", { href: "#/compositions" }, "← Compositions")),
    h("h1", {}, composition.name),
    summary,
    h("h2", {}, "Timeline"),
    h("p", { class: "muted" }, "Drag a segment by its handle onto another's place, or move it with its ↑ ↓ buttons."),
    line.list,
    h("h2", {}, "Add a segment"),
    addSegmentForm(id, generators, refresh),
    h("h2", {}, "Renders"),
    h("div", { class: "toolbar" }, start),
    jobs.table,
    status,
    player,
  );
  drawSummary();
  const recent = await request(`/v1/jobs?${new URLSearchParams({ kind: "composition_render", subject_id: String(id), limit: "10" })}`, { signal });
  if (!recent.items.length) return;
  // The list has no items: the newest job is read whole, for its segments.
  const [newest, ...older] = recent.items;
  watched = newest.id;
  for (const job of older) jobs.track(job);
  jobs.track(await request(`/v1/jobs/${newest.id}`, { signal }));
  if (newest.status === "succeeded") play(newest);
}
