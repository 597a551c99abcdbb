// The app shell: sign-in gate, hash routes, one page at a time.

import { ApiError, request, token } from "./api.js";
import { flash, h, replace } from "./dom.js";
import { cutPage } from "./pages/cut.js";
import { compositionPage, compositionsPage } from "./pages/compositions.js";
import { cutsPage } from "./pages/cuts.js";
import { extractionPage, extractionsPage } from "./pages/extractions.js";
import { jobPage, jobsPage } from "./pages/jobs.js";
import { libraryPage } from "./pages/library.js";
import { mediaPage } from "./pages/media.js";
import { signinPage } from "./pages/signin.js";
import { slideshowPage, slideshowsPage } from "./pages/slideshows.js";

const main = document.getElementById("main");
let current = null; // AbortController of the page on screen: leaving a page stops its streams

const routes = [
  [/^#\/cuts\/(\d+)$/, (m, ctx) => cutPage(ctx, Number(m[1]))],
  [/^#\/jobs\/([0-9a-f-]{36})$/, (m, ctx) => jobPage(ctx, m[1])],
  [/^#\/jobs$/, (_m, ctx) => jobsPage(ctx)],
  [/^#\/cuts$/, (_m, ctx) => cutsPage(ctx)],
  [/^#\/media\/(\d+)$/, (m, ctx) => mediaPage(ctx, Number(m[1]))],
  [/^#\/media$/, (_m, ctx) => libraryPage(ctx)],
  [/^#\/extractions\/(ex_[0-9a-f]{16})$/, (m, ctx) => extractionPage(ctx, m[1])],
  [/^#\/extractions$/, (_m, ctx) => extractionsPage(ctx)],
  [/^#\/slideshows\/([A-Za-z0-9_-]{1,64})$/, (m, ctx) => slideshowPage(ctx, m[1])],
  [/^#\/slideshows$/, (_m, ctx) => slideshowsPage(ctx)],
  [/^#\/compositions\/(\d+)$/, (m, ctx) => compositionPage(ctx, Number(m[1]))],
  [/^#\/compositions$/, (_m, ctx) => compositionsPage(ctx)],
];

export async function render() {
  current?.abort();
  current = new AbortController();
  const ctx = { main, signal: current.signal, navigate };
  flash(null);
  document.getElementById("signout").hidden = !token.get();
  if (!token.get()) {
    highlight(null);
    return signinPage(ctx, () => render());
  }
  const hash = location.hash || "#/cuts";
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (match) {
      highlight(hash.split("/")[1]);
      try {
        await page(match, ctx);
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error instanceof ApiError && error.status === 401) {
          token.clear();
          await render();
          flash(error.message);
          return;
        }
        flash(error.message);
      }
      main.focus({ preventScroll: true });
      return;
    }
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, "There is no page at this address. ", h("a", { href: "#/cuts" }, "Go to the cuts.")));
}

function highlight(section) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

document.getElementById("signout").addEventListener("click", () => {
  token.clear();
  location.hash = "";
  render();
});
window.addEventListener("hashchange", render);
render();

export { request };
