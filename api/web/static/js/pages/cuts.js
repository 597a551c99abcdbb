// Projects and their cuts, each with its versions; publishing a new timeline.

import { allPages, request } from "../api.js";
import { badge, busy, h, replace, when } from "../dom.js";

function uploadForm(navigate) {
  const file = h("input", { id: "upload-file", name: "file", type: "file", required: true });
  const project = h("input", { id: "upload-project", name: "project", required: true, value: "default" });
  const name = h("input", { id: "upload-name", name: "name", placeholder: "from the file name" });
  const rate = h("input", { id: "upload-rate", name: "rate", inputmode: "decimal", placeholder: "EDLs only, e.g. 24" });
  const button = h("button", { type: "submit" }, "Publish");
  const form = h(
    "form",
    { class: "inline", "aria-label": "Publish a timeline" },
    h("label", { for: "upload-file" }, "Timeline (OTIO, EDL, FCP XML)", file),
    h("label", { for: "upload-project" }, "Project", project),
    h("label", { for: "upload-name" }, "Cut name", name),
    h("label", { for: "upload-rate" }, "EDL frame rate", rate),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    const body = new FormData();
    body.set("file", chosen);
    body.set("project", project.value.trim());
    body.set("name", name.value.trim() || chosen.name.replace(/\.[^.]+$/, ""));
    if (rate.value.trim()) body.set("rate", rate.value.trim());
    await busy(button, async () => {
      const created = await request("/v1/cuts", { method: "POST", form: body });
      navigate(`#/cuts/${created.cut.id}`);
    });
  });
  return form;
}

export async function cutsPage({ main, signal, navigate }) {
  // The form is drawn once: the list arriving later must not replace what the user is typing.
  const list = h("div", { id: "cut-list" }, h("p", { class: "muted" }, "Loading cuts…"));
  replace(main, h("h1", {}, "Cuts"), uploadForm(navigate), list);
  const cuts = await allPages("/v1/cuts", { signal, max: 2000 });
  const byProject = new Map();
  for (const cut of cuts) {
    const project = byProject.get(cut.project) || new Map();
    byProject.set(cut.project, project);
    const versions = project.get(cut.name) || [];
    project.set(cut.name, versions);
    versions.push(cut);
  }
  const sections = [];
  for (const [projectName, names] of [...byProject].sort(([a], [b]) => a.localeCompare(b))) {
    const rows = [];
    for (const [cutName, versions] of [...names].sort(([a], [b]) => a.localeCompare(b))) {
      versions.sort((a, b) => b.version - a.version);
      rows.push(
        h(
          "tr",
          {},
          h("th", { scope: "row" }, cutName),
          h(
            "td",
            {},
            versions.map((cut) =>
              h("span", { class: "version" }, h("a", { href: `#/cuts/${cut.id}`, "data-cut": cut.id }, `v${String(cut.version).padStart(3, "0")}`), " ", badge(cut.status), " "),
            ),
          ),
          h("td", {}, versions[0].shot_count ?? "–"),
          h("td", { class: "muted" }, when(versions[0].created_at)),
        ),
      );
    }
    sections.push(
      h("h2", {}, projectName),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Cut"), h("th", {}, "Versions"), h("th", {}, "Shots (latest)"), h("th", {}, "Published"))), h("tbody", {}, rows)),
    );
  }
  replace(list, sections.length ? sections : h("p", { class: "muted" }, "No cuts yet: publish a timeline above, or drop one into a watch folder."));
}
