// A composition's timeline: its segments in order, each with its prompt and params to edit,
// moved by drag and drop (by its handle, so the text in it can still be selected) or by its
// up/down buttons, deleted; and the form adding one at the end.
// Every change is one API call, and the timeline is drawn again from the API's answer.

import { request } from "../api.js";
import { busy, field, flash, h, replace } from "../dom.js";

// A JSON object typed by the user, or an Error whose sentence says why it is not one.
function paramsOf(text, what) {
  let value;
  try {
    value = JSON.parse(text.trim() || "{}");
  } catch (error) {
    throw new Error(`${what} are not JSON: ${error.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error(`${what} must be a JSON object, such as {"source": "gradients"}`);
  return value;
}

// PUT replaces the segment: everything not edited here is sent back as stored (the seed too,
// so an unchanged segment keeps its cached clip).
function replacement(segment, edits) {
  const transition = segment.transition.type === "crossfade" ? { type: "crossfade", frames: segment.transition.frames } : { type: "cut" };
  return {
    generator: segment.generator,
    prompt: segment.prompt,
    negative_prompt: segment.negative_prompt,
    params: segment.params,
    seed: segment.seed,
    frames: segment.frames,
    inputs: segment.inputs,
    transition,
    ...edits,
  };
}

function segmentItem(segment, count, actions) {
  const n = segment.position + 1;
  const id = (name) => `segment-${segment.id}-${name}`;
  const prompt = h("textarea", { id: id("prompt"), rows: 2, cols: 40 }, segment.prompt);
  const params = h("textarea", { id: id("params"), rows: 2, cols: 40, class: "mono" }, JSON.stringify(segment.params));
  const frames = h("input", { id: id("frames"), type: "number", min: 1, value: segment.frames });
  const save = h("button", { type: "button", "aria-label": `Save segment ${n}` }, "Save");
  save.addEventListener("click", () =>
    busy(save, () => actions.save(segment, { prompt: prompt.value, params: paramsOf(params.value, `The params of segment ${n}`), frames: Number(frames.value) })),
  );
  const button = (text, label, action, disabled = false, cls = null) => {
    const b = h("button", { type: "button", "aria-label": label, disabled, class: cls }, text);
    b.addEventListener("click", () => busy(b, action));
    return b;
  };
  const transition = segment.transition.type === "crossfade" ? `crossfade ${segment.transition.frames} frames` : "cut";
  return h(
    "li",
    { class: "segment card", "data-segment": segment.id, "aria-label": `Segment ${n}: ${segment.generator}` },
    h("div", { class: "body" },
      h("div", { class: "name" }, h("span", { class: "handle", draggable: "true", "aria-hidden": "true", title: "Drag to move" }, "⠿"), ` ${n}. ${segment.generator}`),
      h("div", { class: "muted" }, `#${segment.id} · ${segment.frames} frames · seed ${segment.seed} · then ${transition}`),
      h("div", { class: "toolbar" }, field("Prompt", prompt), field("Params (JSON)", params), field("Frames", frames)),
      h(
        "div",
        { class: "toolbar" },
        save,
        button("↑", `Move segment ${n} up`, () => actions.move(segment, -1), segment.position === 0),
        button("↓", `Move segment ${n} down`, () => actions.move(segment, 1), segment.position === count - 1),
        h("span", { class: "spacer" }),
        button("Delete", `Delete segment ${n}`, () => actions.remove(segment), false, "danger"),
      ),
    ),
  );
  return item;
}

// The order after moving segment `id` to the place of `target` (before it moving up, after it moving down).
function moved(order, id, target) {
  const rest = order.filter((s) => s !== id);
  rest.splice(order.indexOf(target), 0, id);
  return rest;
}

export function timeline(composition, onChange) {
  const list = h("ol", { id: "timeline", class: "timeline" });
  let current = composition;
  let dragged = null;
  const order = () => current.segments.map((s) => s.id);
  async function reorder(next) {
    flash(null);
    await onChange(await request(`/v1/compositions/${current.id}/segments/reorder`, { method: "POST", json: { order: next } }));
  }
  const actions = {
    save: async (segment, edits) => {
      flash(null);
      await request(`/v1/segments/${segment.id}`, { method: "PUT", json: replacement(segment, edits) });
      await onChange(await request(`/v1/compositions/${current.id}`));
    },
    move: async (segment, step) => {
      const ids = order();
      const target = ids[segment.position + step];
      await reorder(moved(ids, segment.id, target));
      // Keyboard users stay on the segment they moved: on the same button, or the other at an end.
      const buttons = [...list.querySelectorAll(`[data-segment="${segment.id}"] button[aria-label^="Move"]`)];
      (buttons.find((b) => !b.disabled && b.textContent === (step < 0 ? "↑" : "↓")) || buttons.find((b) => !b.disabled))?.focus();
    },
    remove: async (segment) => {
      await request(`/v1/segments/${segment.id}`, { method: "DELETE" });
      await onChange(await request(`/v1/compositions/${current.id}`));
    },
  };
  list.addEventListener("dragstart", (event) => {
    const item = event.target.closest?.("li.segment");
    if (!item) return;
    dragged = Number(item.dataset.segment);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", String(dragged));
    event.dataTransfer.setDragImage(item, 10, 10);
    item.classList.add("dragging");
  });
  list.addEventListener("dragend", () => list.querySelectorAll(".dragging, .over").forEach((e) => e.classList.remove("dragging", "over")));
  list.addEventListener("dragover", (event) => {
    const item = event.target.closest?.("li.segment");
    if (!item || dragged === null) return;
    event.preventDefault();
    list.querySelectorAll(".over").forEach((e) => e !== item && e.classList.remove("over"));
    item.classList.add("over");
  });
  list.addEventListener("drop", (event) => {
    const item = event.target.closest?.("li.segment");
    if (!item || dragged === null) return;
    event.preventDefault();
    const target = Number(item.dataset.segment);
    const source = dragged;
    dragged = null;
    if (target !== source) reorder(moved(order(), source, target)).catch((error) => flash(error.message));
  });
  function draw(next) {
    current = next;
    replace(list, next.segments.length ? next.segments.map((s) => segmentItem(s, next.segments.length, actions)) : h("li", { class: "muted" }, "No segments yet: add one below."));
  }
  draw(composition);
  return { list, draw };
}

export function addSegmentForm(compositionId, generators, onAdded) {
  const usable = generators.filter((g) => g.available);
  const generator = h(
    "select",
    { id: "new-generator", name: "generator" },
    generators.map((g) => h("option", { value: g.id, disabled: !g.available }, g.available ? `${g.id} v${g.version}` : `${g.id} (${g.unavailable_reason})`)),
  );
  if (usable.length) generator.value = usable[0].id;
  const hint = h("span", { id: "new-params-hint", class: "muted" });
  const showHint = () => {
    const chosen = generators.find((g) => g.id === generator.value);
    const names = Object.keys(chosen?.params_schema?.properties || {});
    replace(hint, chosen ? `${chosen.description} Params: ${names.join(", ") || "none"}.` : "");
  };
  generator.addEventListener("change", showHint);
  showHint();
  const frames = h("input", { id: "new-frames", name: "frames", type: "number", min: 1, value: 24, required: true });
  const prompt = h("textarea", { id: "new-prompt", name: "prompt", rows: 2, cols: 40 });
  const params = h("textarea", { id: "new-params", name: "params", rows: 2, cols: 40, class: "mono", "aria-describedby": "new-params-hint" }, "{}");
  const button = h("button", { type: "submit" }, "Add segment");
  const form = h(
    "form",
    { class: "inline", "aria-label": "Add a segment" },
    field("Generator", generator),
    field("Frames", frames),
    field("Prompt", prompt),
    h("div", { class: "hinted" }, field("Params (JSON)", params), hint),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    flash(null);
    await busy(button, async () => {
      const body = { generator: generator.value, frames: Number(frames.value), prompt: prompt.value, params: paramsOf(params.value, "The params") };
      await request(`/v1/compositions/${compositionId}/segments`, { method: "POST", json: body });
      prompt.value = "";
      await onAdded();
    });
  });
  return form;
}
