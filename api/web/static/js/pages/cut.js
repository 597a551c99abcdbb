// One cut version: its shots as thumbnails, the contact sheet, the diff against an earlier
// version, its jobs with live progress, renders to start, and the videos to play.

import { allPages, forgetMedia, request } from "../api.js";
import { badge, flash, h, image, jobTable, replace, video } from "../dom.js";

const pad = (n) => `v${String(n).padStart(3, "0")}`;

function shotCard(shot, onRerender, onPlay) {
  const tc = `${shot.source.start_tc}–${shot.source.end_tc}`;
  return h(
    "article",
    { class: "card shot", "data-shot": shot.id, "aria-label": `Shot ${shot.name}` },
    image(shot.thumbnail_url, `Thumbnail of ${shot.name}`, "thumb"),
    h(
      "div",
      { class: "body" },
      h("div", { class: "name" }, `${shot.index + 1}. ${shot.name} `, badge(shot.media_status)),
      h("div", {}, h("span", { class: "muted" }, "Source "), h("span", { class: "mono" }, tc)),
      h("div", {}, h("span", { class: "muted" }, "Record "), h("span", { class: "mono" }, `${shot.record.start_tc}–${shot.record.end_tc}`)),
      h("div", {}, h("span", { class: "muted" }, "Duration "), `${shot.record.duration} frames`),
      shot.notes?.length ? h("ul", { class: "muted notes" }, shot.notes.map((note) => h("li", {}, note))) : null,
      h(
        "div",
        { class: "toolbar" },
        h("button", { type: "button", onclick: () => onRerender(shot), "aria-label": `Re-render the thumbnail of ${shot.name}` }, "Re-render"),
        shot.proxy_url ? h("button", { type: "button", onclick: () => onPlay(shot.proxy_url, `Proxy of ${shot.name}`) }, "Play proxy") : null,
      ),
    ),
  );
}

export async function cutPage(ctx, id) {
  const { main, signal } = ctx;
  const cut = await request(`/v1/cuts/${id}`, { signal });
  const title = `${cut.project} / ${cut.name} ${pad(cut.version)}`;
  const shotsGrid = h("div", { class: "grid", id: "shots" });
  const sheet = h("div", { class: "contact-sheet" });
  const player = h("div", { class: "player", id: "player" });
  const diffBox = h("div", { id: "diff" });
  const status = h("p", {}, badge(cut.status), " ", cut.error ? h("span", { class: "error" }, cut.error) : null);

  async function reload() {
    const fresh = await request(`/v1/cuts/${id}`, { signal });
    replace(status, badge(fresh.status), " ", fresh.error ? h("span", { class: "error" }, fresh.error) : null);
    if (fresh.contact_sheet_url) forgetMedia(fresh.contact_sheet_url);
    replace(sheet, fresh.contact_sheet_url ? image(fresh.contact_sheet_url, `Contact sheet of ${title}`) : h("p", { class: "muted" }, "No contact sheet yet."));
    if (fresh.status !== "ingested") {
      replace(shotsGrid, h("p", { class: "muted" }, fresh.status === "failed" ? "The ingest failed; no shots." : "Shots appear once the ingest job has finished."));
      return fresh;
    }
    const shots = await allPages(`/v1/cuts/${id}/shots`, { signal });
    for (const shot of shots) if (shot.thumbnail_url) forgetMedia(shot.thumbnail_url);
    replace(shotsGrid, shots.map((shot) => shotCard(shot, rerenderShot, play)));
    return fresh;
  }

  const jobs = jobTable(signal, async (last) => {
    await reload();
    if (last.kind === "final_video" && last.status === "succeeded") showFinal(last);
  });
  const track = jobs.track;

  async function start(path, json) {
    flash(null);
    try {
      track(await request(path, { method: "POST", json }));
    } catch (error) {
      flash(error.message);
    }
  }

  function play(path, label) {
    replace(player, h("h2", {}, label), video(path, label));
  }

  function showFinal(job) {
    const output = (job.outputs || []).find((o) => o.kind === "final_video");
    if (!output) return;
    forgetMedia(output.url);
    play(output.url, `Final video of ${title}`);
  }

  const frame = h("select", { id: "thumb-frame", name: "frame" }, ["middle", "first", "last"].map((f) => h("option", { value: f }, f)));
  const frameChoice = () => frame.value;
  const rerenderShot = (shot) => start(`/v1/shots/${shot.id}/thumbnail`, { frame: frameChoice(), force: true });
  const resolution = h("select", { id: "final-resolution", name: "resolution" }, ["1920x1080", "1280x720", "640x360", "160x90"].map((r) => h("option", { value: r }, r)));
  const audio = h("input", { id: "final-audio", name: "audio", type: "checkbox", checked: true });
  const preset = h("select", { id: "final-preset", name: "preset" }, ["veryfast", "medium", "ultrafast"].map((p) => h("option", { value: p }, p)));

  const actions = h(
    "div",
    { class: "toolbar", role: "group", "aria-label": "Renders" },
    h("label", { for: "thumb-frame" }, "Thumbnail frame", frame),
    h("button", { type: "button", id: "rerender-thumbnails", onclick: () => start(`/v1/cuts/${id}/thumbnails`, { frame: frameChoice(), force: true }) }, "Re-render thumbnails"),
    h("button", { type: "button", id: "render-proxies", onclick: () => start(`/v1/cuts/${id}/proxies`, {}) }, "Render proxies"),
    h("label", { for: "final-resolution" }, "Resolution", resolution),
    h("label", { for: "final-preset" }, "Preset", preset),
    h("label", { for: "final-audio" }, "Audio", audio),
    h("button", { type: "button", id: "render-final", onclick: () => start(`/v1/cuts/${id}/final-video`, { resolution: resolution.value, preset: preset.value, audio: audio.checked }) }, "Render final video"),
  );

  // Earlier versions of the same cut, for the diff.
  const siblings = (await allPages(`/v1/cuts?${new URLSearchParams({ project: cut.project })}`, { signal })).filter(
    (other) => other.name === cut.name && other.id !== cut.id && other.status === "ingested",
  );
  const against = h(
    "select",
    { id: "diff-against", name: "against" },
    siblings.sort((a, b) => b.version - a.version).map((other) => h("option", { value: other.id }, pad(other.version))),
  );
  const diffForm = h(
    "form",
    { class: "inline", "aria-label": "Diff against another version" },
    h("label", { for: "diff-against" }, "Compare with", against),
    h("button", { type: "submit", disabled: !siblings.length }, "Show diff"),
    siblings.length ? null : h("span", { class: "muted" }, "No other ingested version of this cut."),
  );
  diffForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    flash(null);
    try {
      await showDiff(Number(against.value));
    } catch (error) {
      flash(error.message);
    }
  });

  async function showDiff(otherId) {
    const [diff, mine, theirs] = await Promise.all([
      request(`/v1/cuts/${id}/diff?against=${otherId}`, { signal }),
      allPages(`/v1/cuts/${id}/shots`, { signal }),
      allPages(`/v1/cuts/${otherId}/shots`, { signal }),
    ]);
    const byId = new Map([...mine, ...theirs].map((s) => [s.id, s]));
    const thumb = (shotId, label) => (shotId && byId.get(shotId) ? image(byId.get(shotId).thumbnail_url, label) : h("span", { class: "muted" }, "–"));
    const counts = Object.entries(diff.summary).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replace(/_/g, " ")}`);
    replace(
      diffBox,
      h("p", {}, counts.join(", ")),
      h(
        "table",
        { class: "diff" },
        h("thead", {}, h("tr", {}, h("th", {}, "Shot"), h("th", {}, "Change"), h("th", {}, "Before"), h("th", {}, "After"), h("th", {}, "What changed"))),
        h(
          "tbody",
          {},
          diff.entries.map((entry) =>
            h(
              "tr",
              { "data-status": entry.status },
              h("th", { scope: "row" }, entry.name, entry.old_name ? h("div", { class: "muted" }, `was ${entry.old_name}`) : null),
              h("td", {}, entry.categories.map((c) => [badge(c), " "])),
              h("td", {}, thumb(entry.against_shot_id, `${entry.name} before`)),
              h("td", {}, thumb(entry.shot_id, `${entry.name} after`)),
              h("td", {}, entry.changes.length ? h("ul", {}, entry.changes.map((c) => h("li", {}, c))) : h("span", { class: "muted" }, "no change")),
            ),
          ),
        ),
      ),
    );
  }

  replace(
    main,
    h("p", {}, h("a", { href: "#/cuts" }, "← Cuts")),
    h("h1", {}, title),
    status,
    h(
      "p",
      { class: "muted" },
      `Rate ${cut.rate || "–"} · ${cut.shot_count ?? "–"} shots · ${cut.missing_count ?? 0} missing media · `,
      cut.source_filename,
    ),
    actions,
    h("h2", {}, "Jobs"),
    jobs.table,
    player,
    h("h2", {}, "Shots"),
    shotsGrid,
    h("h2", {}, "Contact sheet"),
    sheet,
    h("h2", {}, "Changes since another version"),
    diffForm,
    diffBox,
  );

  const recent = await request(`/v1/jobs?cut_id=${id}&limit=20`, { signal });
  for (const job of recent.items) track(job);
  const finals = recent.items.filter((job) => job.kind === "final_video" && job.status === "succeeded");
  if (finals.length) showFinal(finals[0]);
  await reload();
}
