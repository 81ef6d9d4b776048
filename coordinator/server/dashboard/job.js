// One job: status, progress, every action, details and blocklist; the latest frame
// (preview.js), its tasks and a log tail (job-tasks.js), regenerating (job-regenerate.js).

import {
  STATUS_LABELS,
  announce,
  badge,
  busy,
  confirmDialog,
  dateTime,
  duration,
  h,
  percent,
  plural,
  progressBar,
  replaceKeepingFocus,
  throttle,
  timeLeft,
  toast,
} from "./dom.js";
import { FRAME_TIME_MEANS, TaskTable } from "./job-tasks.js";
import { openRegenerate } from "./job-regenerate.js";
import { PreviewCard } from "./preview.js";

// The job actions the API offers (job.actions lists those that apply now).
const JOB_BUTTONS = [
  ["resume", "Resume", "primary", "Hand its queued tasks to workers again"],
  ["pause", "Pause", "secondary", "Running tasks finish; no new ones start"],
  ["requeue", "Requeue failed", "secondary", "Run its failed and canceled tasks again"],
  ["requeue-all", "Requeue all", "secondary", "Render every task again, finished ones too"],
  ["regenerate", "Regenerate…", "secondary", "Compile its tasks again, optionally with changed settings"],
  ["cancel", "Cancel job", "danger-quiet", "Stop it: running tasks are told to stop"],
  ["delete", "Delete…", "danger-quiet", "Remove it with its logs and stored frames"],
];

export class JobView {
  constructor(app, id) {
    this.app = app;
    this.id = id;
    this.job = null;
    this.actionsKey = "";
    this.refreshSoon = throttle(() => this.load(), 400);
    this.previewSoon = throttle(() => this.preview.load(), 1500);
  }

  mount(main) {
    this.app.setTitle(`Job ${this.id}`);
    this.head = h("div", { class: "job-head" }, h("h1", {}, `Job ${this.id}`));
    this.overview = h("section", { class: "card overview", "aria-label": "Status" });
    this.actions = h("div", { class: "actions", role: "group", "aria-label": "Job actions" });
    this.previewBox = h("figure", { class: "card preview" });
    this.detailsBox = h("section", { class: "card details", "aria-labelledby": "details-title" });
    this.blockBox = h("div");
    this.tasksBox = h("section", { class: "card", "aria-labelledby": "tasks-title" });
    this.logBox = h("section", { class: "card log-card", "aria-labelledby": "log-title", hidden: true });
    main.replaceChildren(
      h("p", { class: "crumbs" }, h("a", { href: this.app.jobsHash }, "← All jobs")),
      this.head,
      this.overview,
      this.actions,
      h("div", { class: "grid-2" }, this.previewBox, this.detailsBox),
      this.blockBox,
      this.tasksBox,
      this.logBox,
    );
    this.previewBox.replaceChildren(h("div", { class: "preview-empty muted" }, "Looking for frames…"));
    this.preview = new PreviewCard(this.app, this.id, this.previewBox);
    this.tasks = new TaskTable(this.app, { box: this.tasksBox, logBox: this.logBox, reload: () => this.load() });
    this.load();
    this.preview.load();
  }

  unmount() {
    this.preview.close();
    this.tasks.close();
    this.gone = true;
  }

  onEvent(event) {
    const mine = (event.type === "job" && event.id === this.id) || event.job_id === this.id;
    if (event.type === "job-deleted" && event.id === this.id) {
      this.renderGone("This job was deleted.");
    } else if (event.type === "output" && mine) {
      this.preview.outputArrived(event.name);
      this.previewSoon();
      this.refreshSoon();
    } else if (mine || event.type === "worker" || event.type === "worker-removed") {
      this.refreshSoon();
      if (event.type === "task") this.tasks.taskChanged(event.id);
    }
  }

  // ------------------------------------------------------------------ data
  async load() {
    if (this.gone) return;
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    let job;
    let workers;
    try {
      let page;
      [job, page, workers] = await Promise.all([
        this.app.api.get(`/jobs/${this.id}`, { tasks: 0 }),
        this.app.api.get(`/jobs/${this.id}/tasks`, this.tasks.query()),
        this.app.api.get("/workers"),
      ]);
      if (ticket !== this.ticket) return; // only the newest answer is drawn
      if (!this.tasks.take(page)) return this.load(); // it emptied under us: the last page
    } catch (err) {
      if (ticket !== this.ticket) return;
      if (err.status === 404) this.renderGone(`There is no job ${this.id}.`);
      else this.app.failed(err);
      return;
    }
    if (this.gone) return;
    this.tasks.workers = new Map(workers.workers.map((w) => [w.id, w.name]));
    const before = this.job;
    this.job = job;
    if (before && before.status !== job.status) {
      announce(`Job ${job.name} is now ${STATUS_LABELS[job.status] || job.status}.`);
    }
    this.render();
  }

  render() {
    const job = this.job;
    this.app.setTitle(job.name);
    this.app.jobTypes().then((types) => {
      const type = types.find((t) => t.name === job.type);
      const frames = !type || type.needs_blend; // a job without a .blend renders no frames
      this.previewBox.hidden = !frames;
      this.previewBox.parentElement.classList.toggle("single", !frames);
    }, () => {});
    this.renderHead(job);
    this.renderOverview(job);
    this.renderActions(job);
    this.renderDetails(job);
    this.renderBlocklist(job);
    this.tasks.render(job);
  }

  renderGone(text) {
    this.gone = true;
    this.job = null;
    this.head.replaceChildren(h("h1", {}, `Job ${this.id}`));
    for (const box of [this.overview, this.detailsBox, this.previewBox, this.tasksBox, this.blockBox]) {
      box.replaceChildren();
      box.hidden = true;
    }
    this.preview.close();
    this.tasks.close();
    this.actions.replaceChildren(
      h("p", { class: "empty-title", role: "status" }, text, " ", h("a", { href: this.app.jobsHash }, "Back to the jobs")),
    );
  }

  renderHead(job) {
    const type = h("span", {}, job.type);
    const meta = [
      `#${job.id}`,
      type,
      job.submitter ? `by ${job.submitter}` : null,
      `submitted ${dateTime(job.created_at)}`,
      job.generation > 1 ? `generation ${job.generation}` : null,
    ].filter(Boolean);
    this.head.replaceChildren(
      h("h1", {}, job.name),
      h("p", { class: "muted meta" }, meta.flatMap((part, i) => (i ? [" · ", part] : [part]))),
    );
  }

  renderOverview(job) {
    const counts = job.task_counts || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const parts = [`${counts.completed || 0} of ${plural(total, "task")} done`];
    if (counts.active) parts.push(`${counts.active} rendering`);
    if (counts.queued) parts.push(`${counts.queued} queued`);
    if (counts.failed) parts.push(`${counts.failed} failed`);
    if (counts.canceled) parts.push(`${counts.canceled} canceled`);
    if (job.eta_seconds != null) parts.push(timeLeft(job.eta_seconds));
    replaceKeepingFocus(
      this.overview,
      h(
        "div",
        { class: "status-line" },
        h("span", { id: "job-status" }, badge(job.status)),
        job.status_reason ? h("span", { class: "reason" }, job.status_reason) : null,
      ),
      job.warning
        ? h("p", { class: "warning", role: "note" }, h("span", { "aria-hidden": "true" }, "⚠ "), job.warning)
        : null,
      h(
        "div",
        { class: "progress-line" },
        progressBar(job.progress, job.status, "Job progress"),
        h("strong", { class: "num" }, percent(job.progress)),
        h("span", { class: "muted" }, parts.join(" · ")),
        job.frame_seconds == null
          ? null
          : h(
              "span",
              { class: "muted", id: "frame-median", title: FRAME_TIME_MEANS },
              `Render time a frame: ${duration(job.frame_seconds)} (median)`,
            ),
      ),
    );
  }

  // --------------------------------------------------------------- actions
  renderActions(job) {
    const key = `${job.actions.join(",")}|${job.priority}`;
    if (key === this.actionsKey) return; // keep what the person is typing
    this.actionsKey = key;
    const buttons = JOB_BUTTONS.filter(([action]) => job.actions.includes(action)).map(
      ([action, label, kind, title]) =>
        h(
          "button",
          {
            type: "button",
            class: kind,
            title,
            // pause and resume take each other's place: one key keeps the focus there
            dataset: { key: action === "pause" || action === "resume" ? "action-run" : `action-${action}` },
            onclick: (e) => this.act(action, e.currentTarget),
          },
          label,
        ),
    );
    const priority = h("input", {
      id: "priority",
      type: "number",
      min: 0,
      max: 100,
      step: 1,
      value: job.priority,
      "aria-describedby": "priority-help",
      dataset: { key: "priority-input" },
    });
    const priorityForm = h(
      "form",
      { class: "inline-form", "aria-label": "Change the priority" },
      h("label", { for: "priority" }, "Priority"),
      priority,
      h("span", { id: "priority-help", class: "visually-hidden" }, "0 to 100; higher runs first"),
      h("button", { type: "submit", class: "secondary", dataset: { key: "action-priority" } }, "Set"),
    );
    priorityForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.setPriority(priority);
    });
    replaceKeepingFocus(this.actions, buttons, job.actions.includes("priority") ? priorityForm : null);
  }

  async act(action, button) {
    const job = this.job;
    if (action === "regenerate") {
      openRegenerate(this.app, job, () => this.refreshSoon());
      return;
    }
    if (action === "delete") {
      const yes = await confirmDialog({
        title: `Delete job “${job.name}”?`,
        body: "Its tasks, logs and the frames stored on the farm are removed. Frames already delivered to the output folder stay.",
        confirm: "Delete job",
        danger: true,
      });
      if (!yes) return;
    }
    if (action === "requeue-all") {
      const yes = await confirmDialog({
        title: "Render every task again?",
        body: "Finished frames are rendered again too. To run only what failed, use Requeue failed.",
        confirm: "Requeue all",
      });
      if (!yes) return;
    }
    await busy(button, () => this.run(action));
  }

  async run(action) {
    const job = this.job;
    try {
      if (action === "delete") {
        await this.app.api.delete(`/jobs/${this.id}`);
        toast(`Job ${job.name} deleted.`);
        location.hash = this.app.jobsHash;
        return;
      }
      const path = action === "requeue-all" ? "requeue" : action;
      const body = action === "requeue-all" ? { which: "all" } : action === "requeue" ? { which: "failed" } : {};
      const after = await this.app.api.post(`/jobs/${this.id}/${path}`, body);
      toast(`Job ${after.name}: ${STATUS_LABELS[after.status] || after.status}.`);
      await this.load();
    } catch (err) {
      this.app.failed(err);
    }
  }

  async setPriority(input) {
    const value = Number(input.value);
    if (!Number.isInteger(value) || value < 0 || value > 100) {
      input.setAttribute("aria-invalid", "true");
      toast("Priority is a whole number from 0 to 100.", "error");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    try {
      const job = await this.app.api.post(`/jobs/${this.id}/priority`, { priority: value });
      toast(`Priority of ${job.name} is now ${job.priority}.`);
      this.refreshSoon();
    } catch (err) {
      this.app.failed(err);
    }
  }


  // --------------------------------------------------------------- details
  renderDetails(job) {
    const row = (label, value) => [h("dt", {}, label), h("dd", {}, value === "" || value == null ? "–" : value)];
    const show = (value) => (value === null ? "–" : typeof value === "string" ? value : JSON.stringify(value));
    const settings = Object.entries(job.settings || {}).map(([key, value]) => row(key, h("code", {}, show(value))));
    this.detailsBox.replaceChildren(
      h("h2", { id: "details-title" }, "Details"),
      h(
        "dl",
        { class: "facts" },
        row("Priority", String(job.priority)),
        row("Blend file", job.blend),
        row("Saved with", job.blender_version ? `Blender ${job.blender_version}` : ""),
        row("Tries per task", String(job.max_attempts)),
        row("Deliver frames", job.deliver ? "into the output folder" : "kept on the farm"),
        row("Updated", dateTime(job.updated_at)),
      ),
      h("h3", {}, "Settings"),
      h("dl", { class: "facts settings" }, settings),
    );
  }

  renderBlocklist(job) {
    if (!job.blocklist.length) {
      this.blockBox.replaceChildren();
      return;
    }
    const items = job.blocklist.map((entry) =>
      h(
        "li",
        {},
        h("span", {}, entry.name || entry.worker_id, h("span", { class: "muted" }, ` · ${plural(entry.failures, "failure")}`)),
        h(
          "button",
          {
            type: "button",
            class: "secondary small",
            dataset: { key: `unblock-${entry.worker_id}` },
            onclick: () => this.clearBlocklist(entry.worker_id),
          },
          `Let ${entry.name || "it"} try again`,
        ),
      ),
    );
    replaceKeepingFocus(
      this.blockBox,
      h(
        "section",
        { class: "card blocklist", "aria-labelledby": "block-title" },
        h("h2", { id: "block-title" }, "Blocklisted workers"),
        h("p", { class: "muted" }, "These workers failed too many of this job's tasks and get no more of them."),
        h("ul", {}, items),
        h(
          "button",
          { type: "button", class: "secondary", dataset: { key: "unblock-all" }, onclick: () => this.clearBlocklist(null) },
          "Clear the blocklist",
        ),
      ),
    );
  }

  async clearBlocklist(workerId) {
    try {
      await this.app.api.post(`/jobs/${this.id}/clear-blocklist`, workerId ? { worker_id: workerId } : {});
      toast("Blocklist cleared.");
      this.refreshSoon();
    } catch (err) {
      this.app.failed(err);
    }
  }
}
