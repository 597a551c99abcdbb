// One library item: its details and preview, edits (answered inline, or followed as a job), how
// it was made (lineage) and what was made from it (derivatives).

import { allPages, request } from "../api.js";
import { bytes, flash, h, image, jobTable, openLink, replace, video, when } from "../dom.js";
import { editForm } from "./edits.js";
import { mediaCard } from "./library.js";

function details(item) {
  const rows = [
    ["Type", item.type],
    ["Size", `${bytes(item.size)} (${item.size} bytes)`],
    ["Dimensions", item.width ? `${item.width}x${item.height}` : null],
    ["Codec", item.codec],
    ["Container", item.container],
    ["Frame rate", item.rate],
    ["Frames", item.frame_count],
    ["Duration", item.duration ? `${item.duration} s (${item.duration_seconds.toFixed(3)} s)` : null],
    ["Audio", item.type === "video" ? (item.has_audio ? "yes" : "no") : null],
    ["sha-256", h("span", { class: "mono" }, item.sha256)],
    ["Uploaded", when(item.created_at)],
  ].filter(([, v]) => v !== null && v !== undefined);
  return h("dl", { class: "meta", id: "details" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// Fields in the order a person reads them (a JSON column may hand them back in any order).
const ORDER = ["x", "y", "width", "height", "fit", "start_frame", "end_frame", "start", "end", "format", "quality", "crf"];
const rank = (key) => (ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length);

function describeOp({ op, ...args }) {
  const given = Object.entries(args)
    .filter(([, v]) => v !== null && v !== undefined)
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  return `${op}${given.length ? `: ${given.map(([k, v]) => (k === op ? v : `${k} ${v}`)).join(", ")}` : ""}`;
}

async function lineage(item, signal) {
  const made = item.derived_from;
  if (!made) return h("p", { class: "muted", id: "lineage" }, "Uploaded: not made by an edit.");
  const source = made.source_id ? await request(`/v1/media/${made.source_id}`, { signal }).catch(() => null) : null;
  const ops = Array.isArray(made.recipe?.ops) ? made.recipe.ops : null;
  const link = (id, text) => h("a", { href: `#/media/${id}` }, text);
  return h(
    "dl",
    { class: "meta", id: "lineage" },
    h("dt", {}, "Made from"),
    h("dd", {}, made.source_id ? link(made.source_id, source ? `${source.filename} (media ${made.source_id})` : `media ${made.source_id}`) : "an item since deleted"),
    made.inputs.length > 1 ? [h("dt", {}, "Inputs"), h("dd", {}, made.inputs.map((id, n) => [n ? ", " : "", link(id, `media ${id}`)]))] : null,
    h("dt", {}, "Recipe"),
    h("dd", {}, ops ? h("ol", { class: "recipe" }, ops.map((op) => h("li", { class: "mono" }, describeOp(op)))) : h("span", { class: "mono" }, JSON.stringify(made.recipe))),
    h("dt", {}, "Rendered"),
    h("dd", {}, made.run_id ? ["by Dagster run ", h("span", { class: "mono" }, made.run_id)] : "inline, by the API"),
  );
}

export async function mediaPage({ main, signal }, id) {
  const item = await request(`/v1/media/${id}`, { signal });
  const result = h("div", { id: "edit-result", "aria-live": "polite" });
  const derivatives = h("div", { class: "grid", id: "derivatives" }, h("p", { class: "muted" }, "Loading…"));

  async function showDerivatives() {
    const items = await allPages(`/v1/media?derived_from=${id}`, { signal, max: 500 });
    replace(derivatives, items.length ? items.map(mediaCard) : h("p", { class: "muted" }, "Nothing has been made from this item yet."));
  }

  async function showMade(ids, cached) {
    const made = await Promise.all(ids.map((madeId) => request(`/v1/media/${madeId}`, { signal })));
    const names = made.map((m) => `media ${m.id}`).join(", ");
    replace(result, h("p", {}, `Made ${names}`, cached ? " (the same edit of the same content was made before)" : "", "."), h("div", { class: "grid" }, made.map(mediaCard)));
  }

  const jobs = jobTable(signal, async (last) => {
    if (last.status === "succeeded") {
      const done = await request(`/v1/jobs/${last.id}`, { signal }); // with its outputs
      await showMade((done.outputs || []).map((o) => o.media_id).filter(Boolean), false);
    } else {
      replace(result);
    }
    await showDerivatives();
  });

  async function apply(ops) {
    flash(null);
    try {
      const answer = await request(`/v1/media/${id}/edits`, { method: "POST", json: { ops } });
      if (answer.media) {
        await showMade([answer.media.id], answer.cached);
        await showDerivatives();
      } else {
        replace(result, h("p", { class: "muted" }, "Rendering as a job: it is followed below."));
        jobs.track(answer.job);
      }
    } catch (error) {
      if (error.name !== "AbortError") flash(error.message);
    }
  }

  const label = `Preview of ${item.filename}`;
  replace(
    main,
    h("p", {}, h("a", { href: "#/media" }, "← Library")),
    h("h1", {}, item.filename),
    h("p", { class: "muted" }, `media ${item.id} · ${item.type} · `, openLink(item.content_url, "open the original")),
    h("div", { class: "item" }, h("div", { class: "preview", id: "preview" }, item.type === "image" ? image(item.content_url, label) : video(item.content_url, label)), details(item)),
    h("h2", {}, "Edit"),
    editForm(item, apply),
    result,
    jobs.table,
    h("h2", {}, "Lineage"),
    await lineage(item, signal),
    h("h2", {}, "Derivatives"),
    derivatives,
  );
  const recent = await request(`/v1/jobs?${new URLSearchParams({ subject_type: "media", subject_id: String(id), limit: "10" })}`, { signal });
  for (const job of recent.items) jobs.track(job);
  await showDerivatives();
}
