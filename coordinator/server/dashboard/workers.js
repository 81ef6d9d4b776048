// The workers: status, current task, Blender, devices, tags (its pools, editable), last
// seen, and what a person can do.

import {
  badge,
  busy,
  clock,
  confirmDialog,
  h,
  plural,
  replaceKeepingFocus,
  throttle,
  timeAgo,
  toast,
} from "./dom.js";

const BUTTONS = {
  disable: ["Disable", "secondary", "No new tasks; its current task finishes first"],
  "disable-now": ["Stop & disable", "danger-quiet", "Stop its task now (it goes back to the queue) and give it no more"],
  enable: ["Enable", "primary", "Let it take tasks again"],
  remove: ["Remove…", "danger-quiet", "Forget this offline worker"],
};

export class WorkersView {
  constructor(app) {
    this.app = app;
    this.workers = null;
    this.refreshSoon = throttle(() => this.load(), 500);
  }

  mount(main) {
    this.app.setTitle("Workers");
    this.summary = h("p", { class: "summary", "aria-live": "polite" });
    this.box = h("div", { class: "table-wrap" });
    main.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Workers"), this.summary), this.box);
    this.ticker = setInterval(() => this.workers && this.render(), 5000); // "last seen" ages
    this.load();
  }

  unmount() {
    clearInterval(this.ticker);
  }

  onEvent(event) {
    if (["worker", "worker-removed", "task", "job-deleted"].includes(event.type)) this.refreshSoon();
  }

  async load() {
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    try {
      const workers = (await this.app.api.get("/workers")).workers;
      if (ticket !== this.ticket) return; // only the newest answer is drawn
      this.workers = workers;
    } catch (err) {
      this.app.failed(err);
      return;
    }
    this.render();
  }

  render() {
    const workers = this.workers;
    const online = workers.filter((w) => w.status !== "offline").length;
    const busy = workers.filter((w) => w.status === "busy").length;
    const resting = workers.filter((w) => w.status === "resting").length;
    this.summary.textContent = workers.length
      ? `${online} of ${plural(workers.length, "worker")} online · ${busy} rendering` +
        (resting ? ` · ${resting} resting (working hours)` : "")
      : "";
    if (!workers.length) {
      replaceKeepingFocus(
        this.box,
        h(
          "div",
          { class: "empty card" },
          h("p", { class: "empty-title" }, "No workers have joined yet."),
          h("p", { class: "muted" }, "Start one on each render machine (with Blender installed):"),
          h("pre", { class: "command" }, `lanfarm-worker --coordinator ${location.origin} --token <farm token>`),
          h("p", { class: "muted" }, "Workers on the same network also find the farm by themselves when you leave out --coordinator."),
        ),
      );
      return;
    }
    const rows = workers.map((w) => this.row(w));
    replaceKeepingFocus(
      this.box,
      h(
        "table",
        { class: "data workers" },
        h("caption", { class: "visually-hidden" }, "Workers"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Worker", "Status", "Current task", "Blender", "Devices", "Tags", "Last seen", "Actions"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
  }

  row(w) {
    const resting = w.status === "resting" && w.resting_until ? `until ${clock(w.resting_until)}` : null;
    const disabled = w.disabled ? (w.status === "busy" ? "finishing, then disabled" : "disabled") : null;
    const state = [resting, disabled].filter(Boolean).join(" · ") || null;
    const task = w.task
      ? h("a", { href: `#/jobs/${w.task.job_id}` }, `Job ${w.task.job_id} · ${w.task.name}`)
      : h("span", { class: "muted" }, "–");
    const actions = w.actions.map((action) => {
      const [label, kind, title] = BUTTONS[action];
      return h(
        "button",
        {
          type: "button",
          class: `${kind} small`,
          title,
          // disable and enable take each other's place: one key keeps the focus there
          dataset: { key: action === "disable" || action === "enable" ? `toggle-${w.id}` : `${action}-${w.id}` },
          "aria-label": `${label.replace("…", "")} ${w.name}`,
          onclick: (e) => this.act(w, action, e.currentTarget),
        },
        label,
      );
    });
    return h(
      "tr",
      { dataset: { id: w.id, status: w.status }, class: w.disabled ? "dim" : null },
      h("td", {}, h("strong", {}, w.name), w.host ? h("div", { class: "muted small-text" }, w.host) : null),
      h("td", {}, badge(w.status, state)),
      h("td", {}, task),
      h("td", { class: "num" }, w.blender_version || "–"),
      h("td", { class: "muted" }, (w.devices || []).join(", ") || "–"),
      h(
        "td",
        { class: "tags" },
        h("span", {}, (w.tags || []).join(", ") || "–"),
        " ",
        h(
          "button",
          {
            type: "button",
            class: "secondary small",
            title: "Its pools: jobs that require a tag go only to workers that have it",
            dataset: { key: `tags-${w.id}` },
            "aria-label": `Edit tags of ${w.name}`,
            onclick: (e) => busy(e.currentTarget, () => this.editTags(w)),
          },
          "Tags…",
        ),
      ),
      h("td", { class: "muted", title: new Date(w.last_seen * 1000).toLocaleString() }, timeAgo(w.last_seen)),
      h("td", { class: "row-actions" }, actions),
    );
  }

  async act(worker, action, button) {
    if (action === "remove") {
      const yes = await confirmDialog({
        title: `Remove worker ${worker.name}?`,
        body: "The farm forgets it. If its agent starts again, it joins as a new worker.",
        confirm: "Remove worker",
        danger: true,
      });
      if (!yes) return;
    }
    await busy(button, () => this.run(worker, action));
  }

  async editTags(worker) {
    const text = window.prompt(`Tags of ${worker.name} (comma-separated, empty for none):`, (worker.tags || []).join(","));
    if (text === null) return;
    const tags = text.split(",").map((t) => t.trim()).filter(Boolean);
    try {
      const after = await this.app.api.put(`/workers/${encodeURIComponent(worker.id)}/tags`, { tags });
      toast(`Worker ${worker.name}: tags ${after.tags.join(", ") || "(none)"}.`);
      await this.load();
    } catch (err) {
      this.app.failed(err);
    }
  }

  async run(worker, action) {
    const id = encodeURIComponent(worker.id);
    try {
      if (action === "remove") {
        await this.app.api.delete(`/workers/${id}`);
        toast(`Worker ${worker.name} removed.`);
      } else if (action === "enable") {
        await this.app.api.post(`/workers/${id}/enable`);
        toast(`Worker ${worker.name} enabled.`);
      } else {
        const after = await this.app.api.post(`/workers/${id}/disable`, { now: action === "disable-now" });
        toast(
          after.status === "busy"
            ? `Worker ${worker.name} finishes its task, then takes no more.`
            : `Worker ${worker.name} disabled.`,
        );
      }
      await this.load();
    } catch (err) {
      this.app.failed(err);
    }
  }
}
