// The dashboard: sign-in, the hash router, the live event stream.
//
// Plain ES modules served by the coordinator; no build step. Each view is a
// class with mount(main), load() and onEvent(event); the app keeps one live
// stream open and hands every event to the view on screen.

import { Api, ApiError, AuthError } from "./api.js";
import { announce, h, toast } from "./dom.js";
import { JobView } from "./job.js";
import { JobsView } from "./jobs.js";
import { LoginView } from "./login.js";
import { WorkersView } from "./workers.js";

const TOKEN_KEY = "farm-token";
const MAX_RETRY_MS = 10000;

class App {
  constructor() {
    this.main = document.getElementById("main");
    this.api = null;
    this.view = null;
    this.farmName = "Render farm";
    this.stream = null; // AbortController of the live stream
    this.jobsHash = "#/jobs"; // the jobs list as last filtered, for "back"
    this.types = null;
    this.statsTimer = null;
  }

  async start() {
    window.addEventListener("hashchange", () => this.route());
    document.getElementById("sign-out").addEventListener("click", () => {
      this.signOut("You are signed out. The token is no longer kept in this browser.");
    });
    await this.loadHealth();
    const token = sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
    if (token) this.enter(new Api(token));
    else this.showLogin();
  }

  // ------------------------------------------------------------ signing in
  showLogin(message = "", kind = "info") {
    this.leave();
    this.setView(new LoginView(this, message, kind));
  }

  /** Check a token against the coordinator; null when it works, else why not. */
  async trySignIn(token, remember) {
    const api = new Api(token);
    try {
      await api.get("/jobs", { limit: 1 });
    } catch (err) {
      if (err instanceof AuthError) {
        return "That token was refused. Copy it from the coordinator's start-up message or from token.txt in its data folder.";
      }
      return err.message;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
    this.enter(api);
    return null;
  }

  enter(api) {
    this.api = api;
    document.getElementById("topbar").hidden = false;
    this.runStream();
    this.route();
  }

  leave() {
    this.api = null;
    if (this.stream) this.stream.abort();
    this.stream = null;
    document.getElementById("topbar").hidden = true;
  }

  signOut(message, kind = "info") {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    this.showLogin(message, kind);
    if (location.hash && !location.hash.startsWith("#/jobs")) history.replaceState(null, "", "#/jobs");
  }

  /** What every view does with an error: a refused token signs out, the rest is shown. */
  failed(err) {
    if (err instanceof AuthError) {
      this.signOut(
        "The coordinator refused the saved token (it may have changed). Sign in again.",
        "error",
      );
    } else {
      toast(err.message || String(err), "error");
    }
  }

  // ---------------------------------------------------------------- routing
  route() {
    if (!this.api) return;
    const [path, qs] = (location.hash.replace(/^#/, "") || "/jobs").split("?");
    const match = path.match(/^\/jobs\/(\d+)$/);
    let view;
    if (path === "/jobs") {
      this.jobsHash = location.hash || "#/jobs";
      view = new JobsView(this, new URLSearchParams(qs || ""));
    } else if (match) {
      view = new JobView(this, Number(match[1]));
    } else if (path === "/workers") {
      view = new WorkersView(this);
    } else {
      location.replace("#/jobs");
      return;
    }
    for (const [id, prefix] of [["nav-jobs", "/jobs"], ["nav-workers", "/workers"]]) {
      const link = document.getElementById(id);
      if (path.startsWith(prefix)) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const first = this.view === null || this.view instanceof LoginView;
    this.setView(view);
    if (!first) this.main.focus({ preventScroll: true }); // screen readers start on the new page
    window.scrollTo(0, 0);
  }

  setView(view) {
    if (this.view && this.view.unmount) this.view.unmount();
    this.view = view;
    view.mount(this.main);
  }

  setTitle(text) {
    document.title = `${text} · ${this.farmName}`;
  }

  // --------------------------------------------------------- shared lookups
  async jobTypes() {
    if (!this.types) this.types = (await this.api.get("/job-types")).job_types;
    return this.types;
  }

  async loadHealth() {
    try {
      const resp = await fetch("/api/v1/health", { cache: "no-store" });
      const health = await resp.json();
      this.farmName = health.name || this.farmName;
      const online = health.workers;
      const total = Object.values(health.workers_by_status || {}).reduce((a, b) => a + b, 0);
      document.getElementById("farm-stats").textContent =
        total === 0 ? "No workers yet" : `${online} of ${total} workers online`;
      // A reminder of the farm's fingerprint, not a proof: an impostor's page can
      // show the real farm's fingerprint too. Only the browser's own certificate
      // viewer says which certificate this page really came over.
      const print = document.getElementById("farm-fingerprint");
      print.hidden = !health.fingerprint;
      print.textContent = health.fingerprint
        ? `Reminder: this farm's certificate SHA-256 is ${health.fingerprint}. This line ` +
          "proves nothing (any page can show it): to check, open the padlock \u2192 " +
          "certificate \u2192 SHA-256 fingerprint in your browser and compare it with " +
          "what `serve` printed."
        : "";
    } catch {
      // the live indicator says when the coordinator is away
    }
    document.getElementById("farm-name").textContent = this.farmName;
  }

  // ------------------------------------------------------------ live stream
  async runStream() {
    const controller = new AbortController();
    this.stream = controller;
    let delay = 1000;
    let wasLive = false;
    while (!controller.signal.aborted) {
      try {
        await this.api.stream({
          signal: controller.signal,
          onOpen: () => {
            this.setLive("live");
            delay = 1000;
            if (wasLive && this.view && this.view.load) this.view.load(); // catch up
            wasLive = true;
          },
          onEvent: (event) => this.onEvent(event),
        });
      } catch (err) {
        if (controller.signal.aborted) return;
        if (err instanceof AuthError) {
          this.failed(err);
          return;
        }
        if (!(err instanceof ApiError) && !(err instanceof TypeError)) console.warn(err);
      }
      if (controller.signal.aborted) return;
      this.setLive("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  onEvent(event) {
    if (event.type === "shutdown") {
      this.setLive("reconnecting");
      return;
    }
    if (event.type === "resync") {
      // events were dropped while this tab fell behind: reload, then follow again
      if (this.view && this.view.load) this.view.load();
      this.loadHealth();
      return;
    }
    if (event.type === "worker" || event.type === "worker-removed") {
      clearTimeout(this.statsTimer);
      this.statsTimer = setTimeout(() => this.loadHealth(), 500);
    }
    if (this.view && this.view.onEvent) this.view.onEvent(event);
  }

  setLive(state) {
    const live = document.getElementById("live");
    if (live.dataset.state === state) return;
    live.dataset.state = state;
    live.textContent = state === "live" ? "Live" : "Reconnecting…";
    live.title =
      state === "live"
        ? "Updates arrive as they happen"
        : "The coordinator cannot be reached; trying again";
    if (state !== "live") announce("Lost the connection to the coordinator; trying again.");
  }
}

const app = new App();
app.start().catch((err) => {
  document.getElementById("main").replaceChildren(h("p", { class: "error" }, String(err)));
});
