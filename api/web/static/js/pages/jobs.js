// Jobs: a live list with progress bars, and one job with its items, logs, outputs and cancel.

import { followJob, isFinal, request } from "../api.js";
import { badge, flash, h, openLink, percent, replace, when } from "../dom.js";

let dagsterUi = null;
async function dagsterLink(job) {
  if (!job.run_id) return null;
  if (dagsterUi === null) {
    try {
      dagsterUi = (await request("/app/config.json")).dagster_ui || "";
    } catch {
      dagsterUi = "";
    }
  }
  return dagsterUi ? h("a", { href: `${dagsterUi}/runs/${job.run_id}`, target: "_blank", rel: "noopener" }, "Run in the Dagster UI") : null;
}

function subject(job) {
  if (job.subject_type === "cut") return h("a", { href: `#/cuts/${job.subject_id}` }, `cut ${job.subject_id}`);
  if (job.subject_type === "media") return h("a", { href: `#/media/${job.subject_id}` }, `media ${job.subject_id}`);
  if (job.subject_type === "extraction") return h("a", { href: `#/extractions/${job.subject_id}` }, `extraction ${job.subject_id}`);
  if (job.subject_type) return `${job.subject_type} ${job.subject_id ?? ""}`;
  return "";
}

function row(job) {
  return h(
    "tr",
    { "data-job": job.id },
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.kind.replace(/_/g, " "))),
    h("td", {}, subject(job)),
    h("td", {}, badge(job.status)),
    h("td", {}, h("progress", { max: 100, value: percent(job), "aria-label": `Progress of job ${job.id}` }), ` ${percent(job)}%`),
    h("td", { class: "muted" }, job.stage || ""),
    h("td", { class: "error" }, job.error || ""),
    h("td", { class: "muted" }, when(job.created_at)),
  );
}

export async function jobsPage({ main, signal }) {
  const status = h("select", { id: "job-status", name: "status" }, ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) => h("option", { value: s }, s || "any")));
  const body = h("tbody");
  const jobs = new Map();
  const draw = () => replace(body, [...jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at)).map(row));
  async function load() {
    jobs.clear();
    const query = new URLSearchParams({ limit: "50" });
    if (status.value) query.set("status", status.value);
    const page = await request(`/v1/jobs?${query}`, { signal });
    for (const job of page.items) {
      jobs.set(job.id, job);
      if (!isFinal(job)) {
        followJob(job.id, (next) => {
          jobs.set(next.id, next);
          draw();
        }, signal).catch((error) => error.name !== "AbortError" && flash(error.message));
      }
    }
    draw();
  }
  status.addEventListener("change", () => load().catch((error) => flash(error.message)));
  replace(
    main,
    h("h1", {}, "Jobs"),
    h("form", { class: "inline", "aria-label": "Filter jobs" }, h("label", { for: "job-status" }, "Status", status)),
    h("table", { class: "jobs" }, h("thead", {}, h("tr", {}, ["Job", "About", "Status", "Progress", "Stage", "Error", "Started"].map((c) => h("th", {}, c)))), body),
  );
  await load();
}

function items(job) {
  if (!job.items?.length) return null;
  return [
    h("h2", {}, "Items"),
    h(
      "table",
      { class: "items" },
      h("thead", {}, h("tr", {}, ["Item", "Status", "Progress", "Error"].map((c) => h("th", {}, c)))),
      h(
        "tbody",
        {},
        job.items.map((item) =>
          h(
            "tr",
            {},
            h("td", {}, item.id ?? item.name ?? item.item ?? ""),
            h("td", {}, badge(item.status || "queued")),
            h("td", {}, typeof item.progress === "number" ? `${Math.floor(item.progress * 100)}%` : ""),
            h("td", { class: "error" }, item.error || ""),
          ),
        ),
      ),
    ),
  ];
}

function outputs(job) {
  if (!job.outputs?.length) return null;
  const list = h("ul", { class: "outputs" });
  for (const output of job.outputs) {
    const text = `${output.kind.replace(/_/g, " ")}${output.shot_id ? ` (shot ${output.shot_id})` : ""}`;
    const item = output.media_id ? [" · ", h("a", { href: `#/media/${output.media_id}` }, `media ${output.media_id}`)] : null;
    list.append(h("li", {}, openLink(output.url, text, { "data-output": output.kind }), item));
  }
  return [h("h2", {}, "Outputs"), list];
}

export async function jobPage({ main, signal }, id) {
  const view = h("div");
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-job" }, "Cancel");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      draw(await request(`/v1/jobs/${id}/cancel`, { method: "POST" }));
    } catch (error) {
      flash(error.message);
      cancel.disabled = false;
    }
  });
  let link = null;
  function draw(job) {
    cancel.hidden = isFinal(job);
    replace(
      view,
      h("p", {}, badge(job.status), " ", h("span", { class: "muted" }, job.stage || ""), " ", subject(job)),
      h("p", {}, h("progress", { max: 100, value: percent(job), "aria-label": "Job progress", id: "job-progress" }), ` ${percent(job)}%`),
      job.error ? h("p", { class: "error", id: "job-error" }, job.error) : null,
      link,
      items(job),
      outputs(job),
      job.logs?.length
        ? [h("h2", {}, "Logs"), h("div", { class: "logs mono", role: "log" }, job.logs.map((log) => h("div", {}, `${new Date(log.ts).toLocaleTimeString()} ${log.level} ${log.step ? `[${log.step}] ` : ""}${log.msg}`)))]
        : null,
    );
  }
  const first = await request(`/v1/jobs/${id}`, { signal });
  link = await dagsterLink(first);
  replace(main, h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")), h("h1", {}, `Job: ${first.kind.replace(/_/g, " ")}`), h("p", { class: "mono muted" }, id), cancel, view);
  draw(first);
  const last = await followJob(id, draw, signal);
  if (!link) {
    link = await dagsterLink(last);
    draw(last);
  }
}
