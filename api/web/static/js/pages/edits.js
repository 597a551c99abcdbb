// The edit form of a library item: its controls, and the ops they ask for
// (`POST /v1/media/{id}/edits`). A group left empty adds no op; a group half filled is sent as
// it is, so the API's 422 names the field that is missing.

import { field, h } from "../dom.js";

const number = (id, attrs = {}) => h("input", { id, name: id, type: "number", min: 0, step: 1, inputmode: "numeric", ...attrs });
const text = (id, attrs = {}) => h("input", { id, name: id, ...attrs });
const choice = (id, values, empty) => h("select", { id, name: id }, values.map((v) => h("option", { value: v }, v || empty)));
const value = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
const filled = (...inputs) => inputs.some((input) => input.value.trim() !== "");
const group = (legend, ...fields) => h("fieldset", {}, h("legend", {}, legend), ...fields);

function output(formats, levelName, levelHint) {
  const format = choice("output-format", ["", ...formats], "keep");
  const level = number("output-level", { min: 0, max: 100, placeholder: levelHint });
  return {
    control: group("Output", field("Output format", format), field(levelName, level)),
    op: () => (format.value ? { op: "format", format: format.value, [levelName.toLowerCase()]: value(level) } : null),
  };
}

function imageEdits(item) {
  const [x, y] = [number("crop-x", { placeholder: "0" }), number("crop-y", { placeholder: "0" })];
  const [width, height] = [number("crop-width", { min: 1, placeholder: item.width }), number("crop-height", { min: 1, placeholder: item.height })];
  const [toWidth, toHeight] = [number("resize-width", { min: 1 }), number("resize-height", { min: 1 })];
  const fit = choice("resize-fit", ["contain", "cover", "fill"]);
  const out = output(["png", "jpeg", "webp"], "Quality", "default");
  return {
    controls: [
      group("Crop (pixels, from the top left)", field("Crop X", x), field("Crop Y", y), field("Crop width", width), field("Crop height", height)),
      group("Resize (one side keeps the shape)", field("Resize width", toWidth), field("Resize height", toHeight), field("Fit", fit)),
      out.control,
    ],
    ops: () => [
      filled(x, y, width, height) ? { op: "crop", x: value(x) ?? 0, y: value(y) ?? 0, width: value(width), height: value(height) } : null,
      filled(toWidth, toHeight) ? { op: "resize", width: value(toWidth), height: value(toHeight), fit: fit.value } : null,
      out.op(),
    ],
  };
}

function videoEdits(item) {
  const unit = choice("trim-unit", ["frames", "timecode or seconds"]);
  const start = text("trim-start", { placeholder: "0", inputmode: "decimal" });
  const end = text("trim-end", { placeholder: String(item.frame_count ?? ""), inputmode: "decimal" });
  const out = output(["mp4", "webm", "mkv", "gif"], "CRF", "default");
  const bound = (input) => (unit.value === "frames" ? value(input) : input.value.trim() || undefined);
  return {
    controls: [
      group("Trim (the end is not kept)", field("Counted in", unit), field("Trim start", start), field("Trim end", end)),
      out.control,
    ],
    ops: () => [
      filled(start, end)
        ? unit.value === "frames"
          ? { op: "trim", start_frame: bound(start), end_frame: bound(end) }
          : { op: "trim", start: bound(start), end: bound(end) }
        : null,
      out.op(),
    ],
  };
}

// The form; `onSubmit(ops)` with the ops asked for (never empty).
export function editForm(item, onSubmit) {
  const edits = item.type === "image" ? imageEdits(item) : videoEdits(item);
  const button = h("button", { type: "submit", id: "apply-edit" }, "Apply edit");
  const hint = "Fill in the groups to apply, in this order; empty groups are left out.";
  const note = h("p", { class: "muted", id: "edit-note" }, hint);
  const form = h("form", { class: "edit", "aria-label": "Edit this item", "aria-describedby": "edit-note" }, note, edits.controls, h("p", {}, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ops = edits.ops().filter(Boolean);
    if (!ops.length) {
      note.className = "error";
      note.textContent = item.type === "image" ? "Fill in a crop box, a size or an output format first." : "Fill in a trim or an output format first.";
      return;
    }
    note.className = "muted";
    note.textContent = hint;
    button.disabled = true;
    try {
      await onSubmit(ops);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
