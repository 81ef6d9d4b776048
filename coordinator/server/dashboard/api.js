// The coordinator's HTTP API with the farm token, and its live event stream.
//
// Browsers' EventSource cannot send an Authorization header, so the stream is
// read with fetch() and a stream reader: the token never goes into a URL.

export class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

/** The coordinator refused the token (401). */
export class AuthError extends ApiError {}

const PREFIX = "/api/v1";

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async request(method, path, { body, query, raw = false } = {}) {
    const url = new URL(PREFIX + path, location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const init = { method, headers: this.headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch {
      throw new ApiError("The coordinator cannot be reached. Is it still running?", 0);
    }
    if (!resp.ok) throw await errorFrom(resp);
    if (raw) return resp;
    return resp.status === 204 ? null : resp.json();
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  post(path, body = {}) {
    return this.request("POST", path, { body });
  }

  put(path, body = {}) {
    return this.request("PUT", path, { body });
  }

  delete(path) {
    return this.request("DELETE", path);
  }

  async text(path, query) {
    return (await this.request("GET", path, { query, raw: true })).text();
  }

  async blob(path) {
    return (await this.request("GET", path, { raw: true })).blob();
  }

  /**
   * Read /events until it ends or `signal` aborts: onOpen() once connected,
   * onEvent(event) for each event. Throws AuthError on a refused token.
   */
  async stream({ onOpen, onEvent, signal }) {
    const resp = await fetch(PREFIX + "/events", {
      headers: this.headers({ Accept: "text/event-stream" }),
      cache: "no-store",
      signal,
    });
    if (!resp.ok || !resp.body) throw await errorFrom(resp);
    onOpen();
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
  }
}

async function errorFrom(resp) {
  let message = `${resp.status} ${resp.statusText}`;
  let field;
  try {
    const body = await resp.json();
    if (body && body.error) message = body.error;
    field = body && body.field;
  } catch {
    // not JSON: keep the status line
  }
  const Kind = resp.status === 401 ? AuthError : ApiError;
  return new Kind(message, resp.status, field);
}
