// Building pages without innerHTML: text is always text, so no API value can become markup.

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
