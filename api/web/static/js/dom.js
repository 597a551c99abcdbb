// Building pages without innerHTML: text is always text, so no API value can become markup.
// Also the pieces several pages draw: authenticated images and videos, live job tables.

import { followJob, isFinal, mediaUrl } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function flash(message, kind = "error") {
  const box = document.getElementById("flash");
  if (!message) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.className = kind === "error" ? "" : kind;
  box.textContent = message;
  box.hidden = false;
}

// Runs `action` with `button` disabled (no second submit while the first is on its way); an
// error shows the API's sentence.
export async function busy(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    flash(error.message);
  } finally {
    button.disabled = false;
  }
}

export function badge(text) {
  return h("span", { class: `badge ${text}` }, String(text).replace(/_/g, " "));
}

export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString();
}

export function percent(job) {
  return typeof job.percent === "number" ? job.percent : Math.floor((job.progress || 0) * 100);
}

// A form control with its visible label (the label holds the control, and names it by id too).
export function field(text, control) {
  return h("label", { for: control.id }, text, control);
}

// An <img> of an API path (fetched with the token); a placeholder where there is none.
export function image(path, alt, cls) {
  if (!path) return h("div", { class: "noimg", role: "img", "aria-label": `${alt}: not rendered` }, "no image");
  const img = h("img", { alt, class: cls, loading: "lazy" });
  mediaUrl(path)
    .then((url) => {
      img.src = url;
    })
    .catch((error) => {
      img.alt = `${alt}: ${error.message}`;
    });
  return img;
}

export function video(path, label) {
  const element = h("video", { controls: true, preload: "auto", "aria-label": label });
  mediaUrl(path)
    .then((url) => {
      element.src = url;
    })
    .catch((error) => flash(error.message));
  return element;
}

export function jobRow(job) {
  return h(
    "tr",
    { "data-job": job.id },
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.kind.replace(/_/g, " "))),
    h("td", {}, badge(job.status)),
    h("td", { class: "progress-cell" }, h("progress", { max: 100, value: percent(job), "aria-label": `${job.kind} progress` }), ` ${percent(job)}%`),
    h("td", { class: "muted" }, job.stage || ""),
    h("td", { class: "error" }, job.error || ""),
    h("td", { class: "muted" }, when(job.created_at)),
  );
}

// A table of jobs, newest first, each followed live until it ends: then `onEnd(job)` (a failure
// is flashed with its sentence first); `onChange(job)` at every state shown. Jobs already over
// when tracked are only shown.
export function jobTable(signal, onEnd, onChange) {
  const body = h("tbody");
  const jobs = new Map();
  const table = h("table", { class: "jobs", hidden: true }, h("thead", {}, h("tr", {}, ["Job", "Status", "Progress", "Stage", "Error", "Started"].map((c) => h("th", {}, c)))), body);
  function show(job) {
    jobs.set(job.id, job);
    table.hidden = false;
    replace(body, [...jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at)).map(jobRow));
    onChange?.(job);
  }
  function track(job) {
    show(job);
    if (isFinal(job)) return;
    followJob(job.id, show, signal)
      .then(async (last) => {
        if (signal.aborted) return;
        if (last.status === "failed") flash(`${last.kind.replace(/_/g, " ")} failed: ${last.error || "no reason given"}`);
        await onEnd?.(last);
      })
      .catch((error) => error.name !== "AbortError" && flash(error.message));
  }
  return { table, track };
}

// A link that opens an API path's content (fetched with the token) in a new tab.
export function openLink(path, text, attrs = {}) {
  const link = h("a", { href: "#", ...attrs }, text);
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    try {
      window.open(await mediaUrl(path), "_blank", "noopener");
    } catch (error) {
      flash(error.message);
    }
  });
  return link;
}

export function bytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

// Files chosen with `input` or dropped onto `zone` go to `send(files)`; its error is flashed.
export function acceptFiles(zone, input, send) {
  input.addEventListener("change", () =>
    send([...input.files])
      .catch((error) => flash(error.message))
      .finally(() => (input.value = "")),
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send([...(event.dataTransfer?.files || [])]).catch((error) => flash(error.message));
  });
}
