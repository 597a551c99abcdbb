// Sign in with the API token; it is checked against the API before it is kept.

import { ApiError, request, token } from "../api.js";
import { flash, h, replace } from "../dom.js";

export function signinPage({ main }, done) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "Paste the API token (MEDIA_PIPELINE_API_TOKEN; `media-pipeline up` prints it)."),
    h("label", { for: "token" }, "API token", input),
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    try {
      await request("/v1/jobs?limit=1");
    } catch (error) {
      token.clear();
      flash(error instanceof ApiError ? error.message : String(error));
      input.focus();
      return;
    }
    done();
  });
  replace(main, form);
  input.focus();
}
