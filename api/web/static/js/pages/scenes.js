// The scenes editor of a slideshow: one fieldset a scene (1-3 images, a voiceover or text to
// synthesise, duration, caption, fit, motion), saved with PUT .../scenes. A refused list shows
// the API's sentence, and each offending field's message beside its scene.

import { ApiError, request } from "../api.js";
import { busy, field, flash, h, replace } from "../dom.js";

const names = (text) => text.split(",").map((v) => v.trim()).filter(Boolean);

function sceneBody(values) {
  const scene = { images: names(values.images), fit: values.fit, motion: values.motion };
  if (values.voiceover.trim()) scene.voiceover = values.voiceover.trim();
  if (values.text.trim()) scene.text = values.text.trim();
  // Sent as typed when it is not a number: the API's sentence then names the field.
  if (values.duration.trim()) scene.duration = Number.isNaN(Number(values.duration)) ? values.duration : Number(values.duration);
  if (values.caption.trim()) scene.caption = values.caption;
  return scene;
}

function fromStored(scene) {
  return {
    images: (scene.images || []).join(", "),
    voiceover: scene.voiceover || "",
    text: scene.text || "",
    duration: scene.duration != null ? String(scene.duration) : "",
    caption: scene.caption || "",
    fit: scene.fit || "cover",
    motion: scene.motion || "pan",
  };
}

const EMPTY = fromStored({});

function sceneFieldset(values, n, onRemove) {
  const id = (name) => `scene-${n}-${name}`;
  const controls = {
    images: h("input", { id: id("images"), value: values.images, list: "asset-images", placeholder: "a.jpg, b.jpg", "aria-describedby": id("images-hint") }),
    voiceover: h("input", { id: id("voiceover"), value: values.voiceover, list: "asset-voiceovers", placeholder: "none" }),
    text: h("textarea", { id: id("text"), rows: 2, cols: 30 }, values.text),
    duration: h("input", { id: id("duration"), value: values.duration, inputmode: "decimal", placeholder: "from the voice" }),
    caption: h("input", { id: id("caption"), value: values.caption }),
    fit: h("select", { id: id("fit") }, ["cover", "contain"].map((v) => h("option", { value: v, selected: v === values.fit }, v))),
    motion: h("select", { id: id("motion") }, ["pan", "none"].map((v) => h("option", { value: v, selected: v === values.motion }, v))),
  };
  const error = h("p", { class: "error scene-error", id: id("error"), "aria-live": "polite" });
  const set = h(
    "fieldset",
    { class: "scene", "data-scene": n },
    h("legend", {}, `Scene ${n + 1}`),
    h("div", { class: "hinted" }, field("Images (1-3, by commas)", controls.images), h("span", { id: id("images-hint"), class: "muted" }, "names under images/")),
    field("Voiceover", controls.voiceover),
    field("Text to synthesise", controls.text),
    field("Duration (s)", controls.duration),
    field("Caption", controls.caption),
    field("Fit", controls.fit),
    field("Motion", controls.motion),
    h("button", { type: "button", class: "danger", onclick: onRemove, "aria-label": `Remove scene ${n + 1}` }, "Remove"),
    error,
  );
  const read = () => Object.fromEntries(Object.entries(controls).map(([k, c]) => [k, c.value]));
  return { set, read, error };
}

export function scenesEditor(slideshowId, stored) {
  const list = h("div", { id: "scenes" });
  const status = h("span", { class: "muted", id: "scenes-status", "aria-live": "polite" });
  let rows = [];
  function draw(values) {
    rows = values.map((v, n) => sceneFieldset(v, n, () => draw(rows.map((r) => r.read()).filter((_, i) => i !== n))));
    replace(list, rows.length ? rows.map((r) => r.set) : h("p", { class: "muted" }, "No scenes: add one."));
  }
  const add = h("button", { type: "button", id: "add-scene" }, "Add scene");
  add.addEventListener("click", () => {
    draw([...rows.map((r) => r.read()), { ...EMPTY }]);
    list.querySelector("fieldset.scene:last-of-type input")?.focus();
  });
  const save = h("button", { type: "submit", id: "save-scenes" }, "Save scenes");
  const form = h("form", { "aria-label": "Scenes" }, list, h("div", { class: "toolbar" }, add, save, status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    flash(null);
    replace(status);
    for (const row of rows) replace(row.error);
    await busy(save, async () => {
      try {
        const answer = await request(`/v1/slideshows/${slideshowId}/scenes`, { method: "PUT", json: { scenes: rows.map((r) => sceneBody(r.read())) } });
        replace(status, `Saved ${answer.scenes} scene${answer.scenes === 1 ? "" : "s"}.`);
      } catch (error) {
        if (error instanceof ApiError) showFieldErrors(error.problem?.errors || []);
        throw error; // busy() shows the API's sentence
      }
    });
  });
  function showFieldErrors(errors) {
    for (const e of errors) {
      const match = /^scenes\.(\d+)(?:\.(.+))?$/.exec(e.field || "");
      const row = match && rows[Number(match[1])];
      if (row) row.error.append(h("span", {}, `${match[2] || "scene"}: ${e.message} `));
    }
  }
  draw((stored?.scenes || [{}]).map(fromStored));
  return form;
}

// The scenes stored before (null if none yet).
export async function storedScenes(slideshowId, signal) {
  try {
    return await request(`/v1/slideshows/${slideshowId}/scenes`, { signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
