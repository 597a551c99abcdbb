// Talking to the /v1 API: the token, problem sentences, authenticated media, job event streams.
//
// The token lives in this tab's sessionStorage only (never in a URL or a cookie): every call
// sends it as a Bearer header. Images and videos need the header too, so they are fetched
// and shown through blob: URLs.

const TOKEN_KEY = "media_pipeline.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `the server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra = {}) {
  const value = token.get();
  return value ? { Authorization: `Bearer ${value}`, ...extra } : extra;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { detail: `the server answered ${response.status} ${response.statusText}` };
  }
}

export async function request(path, { method = "GET", json, form, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "the API cannot be reached; check that media-pipeline is running" });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  return response.json();
}

// Object URLs by API path, so a page revisited shows its images at once.
const blobs = new Map();

export async function mediaUrl(path) {
  if (!path) return null;
  if (!blobs.has(path)) {
    blobs.set(
      path,
      (async () => {
        const response = await fetch(path, { headers: headers() });
        if (!response.ok) throw new ApiError(response.status, await problemOf(response));
        return URL.createObjectURL(await response.blob());
      })(),
    );
  }
  try {
    return await blobs.get(path);
  } catch (error) {
    blobs.delete(path); // a later render may succeed: do not cache the failure
    throw error;
  }
}

export function forgetMedia(path) {
  const cached = blobs.get(path);
  blobs.delete(path);
  cached?.then((url) => URL.revokeObjectURL(url)).catch(() => {});
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
export const isFinal = (job) => TERMINAL.has(job.status);

// Follow a job: `onJob(job)` for each new state, until it is final or `signal` aborts.
// The job event stream (Server-Sent Events) is read with fetch, since EventSource cannot send
// the Authorization header. A dropped connection resumes from the last event seen
// (Last-Event-ID); there is no polling loop.
export async function followJob(id, onJob, signal) {
  let job = await request(`/v1/jobs/${id}`, { signal });
  onJob(job);
  if (isFinal(job)) return job;
  let lastEventId = null;
  for (let attempt = 0; !signal?.aborted && attempt < 1000; attempt += 1) {
    let response;
    try {
      response = await fetch(`/v1/jobs/${id}/events`, {
        headers: headers(lastEventId ? { "Last-Event-ID": lastEventId, Accept: "text/event-stream" } : { Accept: "text/event-stream" }),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") return job;
      await sleep(1000, signal);
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (error.name === "AbortError") return job;
        break; // the connection dropped: resume from the last event seen
      }
      if (chunk.done) break;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.id) lastEventId = event.id;
        if (!event.data) continue;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        const next = data.job || (data.id === id && data.status ? data : null);
        if (next) {
          job = next;
          onJob(job);
        } else {
          job = await request(`/v1/jobs/${id}`, { signal });
          onJob(job);
        }
        if (isFinal(job)) return job;
      }
    }
  }
  return job;
}

function parseEvent(block) {
  const event = { data: "" };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") event.data += (event.data ? "\n" : "") + value;
    else if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
  }
  return event;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// Every item of a paged list (`{items, next_cursor}`), up to `max`.
export async function allPages(path, { signal, max = 5000 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const url = new URL(path, location.origin);
    url.searchParams.set("limit", "200");
    if (cursor) url.searchParams.set("cursor", cursor);
    const page = await request(url.pathname + url.search, { signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
