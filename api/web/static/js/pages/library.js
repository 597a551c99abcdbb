// The media library: upload (file input or drop), the items newest first, filtered by type and
// upload date, each with its preview.

import { request } from "../api.js";
import { acceptFiles, bytes, field, flash, h, image, replace, when } from "../dom.js";

const PAGE = 60;

export function mediaCard(item) {
  const label = `${item.filename} (media ${item.id})`;
  const size = item.width ? `${item.width}x${item.height}` : "";
  const length = item.type === "video" ? `${item.frame_count ?? "?"} frames · ${item.duration_seconds?.toFixed(2) ?? "?"} s` : "";
  return h(
    "article",
    { class: "card media", "data-media": item.id, "data-type": item.type, "aria-label": label },
    item.type === "image" ? image(item.content_url, `Preview of ${label}`, "preview") : h("div", { class: "noimg" }, "▶ video"),
    h(
      "div",
      { class: "body" },
      h("div", { class: "name" }, h("a", { href: `#/media/${item.id}` }, item.filename)),
      h("div", { class: "muted" }, `#${item.id} · ${item.type} · ${[size, length, bytes(item.size)].filter(Boolean).join(" · ")}`),
      item.derived_from ? h("div", { class: "muted" }, "edit of ", item.derived_from.source_id ? h("a", { href: `#/media/${item.derived_from.source_id}` }, `#${item.derived_from.source_id}`) : "a deleted item") : null,
      h("div", { class: "muted" }, when(item.created_at)),
    ),
  );
}

// Upload one file: a line in `log` saying what became of it.
async function uploadOne(file, log) {
  const line = h("li", {}, `${file.name}: uploading…`);
  log.append(line);
  const body = new FormData();
  body.set("file", file);
  try {
    const item = await request("/v1/media", { method: "POST", form: body });
    replace(line, `${file.name}: `, item.duplicate ? "already in the library as " : "added as ", h("a", { href: `#/media/${item.id}` }, `media ${item.id}`));
  } catch (error) {
    replace(line, h("span", { class: "error" }, `${file.name}: ${error.message}`));
    flash(error.message);
  }
}

function uploadZone(onUploaded) {
  const input = h("input", { id: "media-files", name: "file", type: "file", multiple: true, accept: "image/*,video/*" });
  const log = h("ul", { class: "uploads", "aria-live": "polite" });
  const zone = h("div", { class: "dropzone", id: "drop-zone" }, h("p", {}, "Drop images or videos here, or "), field("Choose files to upload", input), log);
  async function send(files) {
    if (!files.length) return;
    flash(null);
    for (const file of files) await uploadOne(file, log); // one at a time: each is streamed and hashed
    await onUploaded();
  }
  acceptFiles(zone, input, send);
  return zone;
}

// A date input's day as the instant it starts, here; `next` gives the start of the day after.
function dayStart(value, next = false) {
  const day = new Date(`${value}T00:00`);
  if (next) day.setDate(day.getDate() + 1);
  return day.toISOString();
}

export async function libraryPage({ main, signal }) {
  const type = h("select", { id: "media-type", name: "type" }, ["", "image", "video"].map((t) => h("option", { value: t }, t || "any")));
  const from = h("input", { id: "media-from", name: "uploaded_after", type: "date" });
  const to = h("input", { id: "media-to", name: "uploaded_before", type: "date" });
  const filters = h("form", { class: "inline", "aria-label": "Filter the library" }, field("Type", type), field("Uploaded from", from), field("Uploaded until (inclusive)", to));
  const grid = h("div", { class: "grid", id: "media-list" }, h("p", { class: "muted" }, "Loading the library…"));
  const more = h("button", { type: "button", id: "media-more", hidden: true }, "Show more");
  let cursor = null;
  let latest = 0; // a filter changed while a page was loading: only the newest answer is drawn

  async function load(append = false) {
    const mine = ++latest;
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (type.value) query.set("type", type.value);
    if (from.value) query.set("uploaded_after", dayStart(from.value));
    if (to.value) query.set("uploaded_before", dayStart(to.value, true));
    if (append && cursor) query.set("cursor", cursor);
    const page = await request(`/v1/media?${query}`, { signal });
    if (mine !== latest) return;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    const cards = page.items.map(mediaCard);
    if (append) grid.append(...cards);
    else replace(grid, cards.length ? cards : h("p", { class: "muted" }, "No media matches: upload some above, or change the filters."));
  }
  const reload = () => load().catch((error) => error.name !== "AbortError" && flash(error.message));
  filters.addEventListener("change", reload);
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  more.addEventListener("click", () => load(true).catch((error) => flash(error.message)));
  replace(main, h("h1", {}, "Library"), uploadZone(() => load()), h("h2", {}, "Items"), filters, grid, more);
  await load();
}
