// One job: status, progress, every action, the latest frame, its tasks and a log tail.

import {
  STATUS_LABELS,
  announce,
  badge,
  busy,
  confirmDialog,
  dateTime,
  h,
  percent,
  plural,
  progressBar,
  replaceKeepingFocus,
  taskTime,
  throttle,
  timeAgo,
  timeLeft,
  toast,
} from "./dom.js";
import { MOVIE, PREVIEW_NAME, fetchPreview, videoFigure } from "./preview.js";

const IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
const MAX_PREVIEW_BYTES = 40e6;
const TASK_PAGE = 100; // rows per page: a 100,000-task job is fetched a page at a time
const LOG_TAIL = 16384;

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
    this.workers = new Map(); // id -> name
    this.logTask = null; // the task whose log is shown
    this.preview = { name: null, sha: null, url: null };
    this.actionsKey = "";
    this.tasks = { rows: [], total: 0, offset: 0, status: "" }; // the page of tasks shown
    this.refreshSoon = throttle(() => this.load(), 400);
    this.logSoon = throttle(() => this.loadLog(), 1000);
    this.previewSoon = throttle(() => this.loadPreview(), 1500);
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
    this.load();
    this.loadPreview();
  }

  unmount() {
    if (this.preview.url) URL.revokeObjectURL(this.preview.url);
    this.gone = true;
  }

  onEvent(event) {
    const mine = (event.type === "job" && event.id === this.id) || event.job_id === this.id;
    if (event.type === "job-deleted" && event.id === this.id) {
      this.renderGone("This job was deleted.");
    } else if (event.type === "output" && mine) {
      if (event.name === PREVIEW_NAME) this.preview.name = null; // a new preview: fetch it
      this.previewSoon();
      this.refreshSoon();
    } else if (mine || event.type === "worker" || event.type === "worker-removed") {
      this.refreshSoon();
      if (event.type === "task" && event.id === this.logTask) this.logSoon();
    }
  }

  // ------------------------------------------------------------------ data
  async load() {
    if (this.gone) return;
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    let job;
    let workers;
    try {
      const query = { limit: TASK_PAGE, offset: this.tasks.offset };
      if (this.tasks.status) query.status = this.tasks.status;
      let page;
      [job, page, workers] = await Promise.all([
        this.app.api.get(`/jobs/${this.id}`, { tasks: 0 }),
        this.app.api.get(`/jobs/${this.id}/tasks`, query),
        this.app.api.get("/workers"),
      ]);
      if (ticket !== this.ticket) return; // only the newest answer is drawn
      if (page.tasks.length === 0 && page.total > 0 && this.tasks.offset > 0) {
        // the page emptied under us (fewer tasks of that status now): show the last one
        this.tasks.offset = Math.floor((page.total - 1) / TASK_PAGE) * TASK_PAGE;
        return this.load();
      }
      this.tasks.rows = page.tasks;
      this.tasks.total = page.total;
    } catch (err) {
      if (ticket !== this.ticket) return;
      if (err.status === 404) this.renderGone(`There is no job ${this.id}.`);
      else this.app.failed(err);
      return;
    }
    if (this.gone) return;
    this.workers = new Map(workers.workers.map((w) => [w.id, w.name]));
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
    this.renderTasks(job);
  }

  renderGone(text) {
    this.gone = true;
    this.job = null;
    this.head.replaceChildren(h("h1", {}, `Job ${this.id}`));
    for (const box of [this.overview, this.detailsBox, this.previewBox, this.tasksBox, this.blockBox]) {
      box.replaceChildren();
      box.hidden = true;
    }
    this.logBox.hidden = true;
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
      this.openRegenerate();
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

  // ------------------------------------------------------------ regenerate
  async openRegenerate() {
    let types;
    try {
      types = await this.app.jobTypes();
    } catch (err) {
      this.app.failed(err);
      return;
    }
    const job = this.job;
    const type = types.find((t) => t.name === job.type);
    const fields = (type ? type.settings : []).map((setting) => settingField(setting, job.settings[setting.name]));
    const keep = h("input", { type: "checkbox", id: "regen-keep", checked: true, "aria-describedby": "regen-keep-help" });
    const message = h("p", { class: "form-message", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary" }, "Regenerate");
    const form = h(
      "form",
      { method: "dialog", class: "settings-form", novalidate: true }, // the coordinator says what is wrong
      h("h2", { id: "regen-title" }, `Regenerate “${job.name}”`),
      h(
        "p",
        { class: "muted" },
        "Its tasks are compiled again from these settings. The job keeps its files and history; running tasks are stopped.",
      ),
      h("div", { class: "settings-grid" }, fields.map((f) => f.row)),
      h(
        "label",
        { class: "check" },
        keep,
        "Keep finished frames",
      ),
      h(
        "p",
        { id: "regen-keep-help", class: "help" },
        "Frames that the new tasks would render the same way are not rendered again.",
      ),
      message,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel"),
        submit,
      ),
    );
    const dialog = h("dialog", { class: "dialog wide", "aria-labelledby": "regen-title" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const changes = {};
      for (const field of fields) {
        field.input.removeAttribute("aria-invalid");
        const value = field.read();
        if (JSON.stringify(value) !== JSON.stringify(job.settings[field.setting.name] ?? null)) {
          changes[field.setting.name] = value;
        }
      }
      submit.disabled = true;
      try {
        const after = await this.app.api.post(`/jobs/${this.id}/regenerate`, {
          settings: changes,
          keep_completed: keep.checked,
        });
        dialog.close();
        const r = after.regenerated || {};
        toast(`Regenerated: ${plural(r.tasks || 0, "task")}, ${r.kept || 0} kept as finished.`);
        this.refreshSoon();
      } catch (err) {
        submit.disabled = false;
        if (err.status === 401) {
          dialog.close();
          this.app.failed(err);
          return;
        }
        message.textContent = err.message;
        message.classList.add("is-error");
        const bad = fields.find((f) => f.setting.name === err.field);
        if (bad) {
          bad.input.setAttribute("aria-invalid", "true");
          bad.input.focus();
        }
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector("input, select");
    if (first) first.focus();
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

  // ----------------------------------------------------------------- tasks
  renderTasks(job) {
    const tasks = this.tasks.rows;
    const { total, offset, status } = this.tasks;
    const body = tasks.map((task) => this.taskRow(task));
    const table = h(
      "table",
      { class: "data tasks" },
      h("caption", { class: "visually-hidden" }, `Tasks of ${job.name}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["#", "Task", "Status", "Progress", "Time", "Tries", "Worker", "Activity", "Actions"].map(
            (text) => h("th", { scope: "col" }, text),
          ),
        ),
      ),
      h("tbody", {}, body),
    );
    const all = Object.values(job.task_counts || {}).reduce((a, b) => a + b, 0);
    const filter = h(
      "select",
      {
        id: "task-status",
        "aria-label": "Show tasks",
        dataset: { key: "task-status" },
        onchange: (e) => this.showTasks(e.currentTarget.value, 0),
      },
      h("option", { value: "", selected: status === "" }, `All (${all})`),
      // the statuses the job has now, and the one chosen even when none are left
      ...Object.entries({ ...(status ? { [status]: 0 } : {}), ...(job.task_counts || {}) }).map(
        ([name, count]) =>
          h("option", { value: name, selected: status === name }, `${STATUS_LABELS[name] || name} (${count})`),
      ),
    );
    const pager = total > TASK_PAGE
      ? h(
          "div",
          { class: "pager", role: "group", "aria-label": "Pages of tasks" },
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              disabled: offset === 0,
              dataset: { key: "tasks-prev" },
              onclick: () => this.showTasks(status, Math.max(0, offset - TASK_PAGE)),
            },
            "← Previous",
          ),
          h("span", { class: "muted", "aria-live": "polite" }, `${offset + 1}–${offset + tasks.length} of ${total}`),
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              disabled: offset + TASK_PAGE >= total,
              dataset: { key: "tasks-next" },
              onclick: () => this.showTasks(status, offset + TASK_PAGE),
            },
            "Next →",
          ),
        )
      : null;
    replaceKeepingFocus(
      this.tasksBox,
      h(
        "div",
        { class: "tasks-head" },
        h("h2", { id: "tasks-title" }, "Tasks ", h("span", { class: "muted count" }, `(${total})`)),
        all ? filter : null,
      ),
      tasks.length
        ? h("div", { class: "table-wrap" }, table)
        : h("p", { class: "muted" }, all ? "No tasks with this status." : "This job has no tasks."),
      pager,
    );
  }

  showTasks(status, offset) {
    this.tasks.status = status;
    this.tasks.offset = offset;
    this.load();
  }

  taskRow(task) {
    const worker = task.worker_id ? this.workers.get(task.worker_id) || task.worker_id.slice(0, 8) : "–";
    const showing = this.logTask === task.id;
    const buttons = [
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          "aria-pressed": showing ? "true" : "false",
          dataset: { key: `log-${task.id}` },
          "aria-label": `Log of ${task.name}`,
          onclick: () => this.showLog(task.id),
        },
        "Log",
      ),
    ];
    if (task.actions.includes("requeue")) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "secondary small",
            dataset: { key: `requeue-${task.id}` },
            "aria-label": `Requeue ${task.name}`,
            onclick: (e) => this.taskAction(task, "requeue", e.currentTarget),
          },
          "Requeue",
        ),
      );
    }
    if (task.actions.includes("cancel")) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "secondary small",
            dataset: { key: `cancel-${task.id}` },
            "aria-label": `Cancel ${task.name}`,
            onclick: (e) => this.taskAction(task, "cancel", e.currentTarget),
          },
          "Cancel",
        ),
      );
    }
    return h(
      "tr",
      { dataset: { id: task.id, status: task.status }, class: showing ? "selected" : null },
      h("td", { class: "num muted" }, task.index + 1),
      h("td", {}, task.name),
      h("td", {}, badge(task.status)),
      h(
        "td",
        {},
        h(
          "div",
          { class: "progress-cell" },
          progressBar(task.progress, task.status, `Progress of ${task.name}`),
          h("span", { class: "num" }, percent(task.progress)),
        ),
      ),
      h("td", { class: "num time" }, taskTime(task)),
      h("td", { class: "num" }, task.attempts),
      h("td", {}, worker),
      h("td", { class: "activity muted", title: task.activity || null }, task.activity || ""),
      h("td", { class: "row-actions" }, buttons),
    );
  }

  async taskAction(task, action, button) {
    await busy(button, async () => {
      try {
        const after = await this.app.api.post(`/tasks/${task.id}/${action}`);
        toast(`Task ${after.name}: ${STATUS_LABELS[after.status] || after.status}.`);
        await this.load();
      } catch (err) {
        this.app.failed(err);
      }
    });
  }

  // ------------------------------------------------------------------- log
  showLog(taskId) {
    this.logTask = this.logTask === taskId ? null : taskId;
    if (this.job) this.renderTasks(this.job);
    if (this.logTask === null) {
      this.logBox.hidden = true;
      return;
    }
    this.logBox.hidden = false;
    this.loadLog();
  }

  async loadLog() {
    const taskId = this.logTask;
    if (taskId === null || this.gone) return;
    const task = this.tasks.rows.find((t) => t.id === taskId);
    let text;
    try {
      text = await this.app.api.text(`/tasks/${taskId}/log`, { tail: LOG_TAIL });
    } catch (err) {
      this.app.failed(err);
      return;
    }
    if (taskId !== this.logTask) return;
    const old = this.logBox.querySelector("pre");
    const atEnd = !old || old.scrollTop + old.clientHeight >= old.scrollHeight - 8;
    const pre = h(
      "pre",
      { class: "log", tabindex: 0, "aria-label": `Log of ${task ? task.name : `task ${taskId}`}` },
      text || "(nothing logged yet)",
    );
    replaceKeepingFocus(
      this.logBox,
      h(
        "div",
        { class: "log-head" },
        h("h2", { id: "log-title" }, `Log: ${task ? task.name : `task ${taskId}`}`),
        h("span", { class: "muted" }, `last ${Math.round(LOG_TAIL / 1024)} KB, updated live`),
        h("button", { type: "button", class: "secondary small", dataset: { key: "log-close" }, onclick: () => this.showLog(taskId) }, "Close"),
      ),
      pre,
    );
    if (atEnd) pre.scrollTop = pre.scrollHeight;
    else pre.scrollTop = old.scrollTop;
  }

  // --------------------------------------------------------------- preview
  async loadPreview() {
    if (this.gone) return;
    if (await this.showPreviewVideo()) return;
    let outputs;
    try {
      outputs = (await this.app.api.get(`/jobs/${this.id}/outputs`)).outputs;
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return;
    }
    const images = outputs.filter((o) => IMAGE.test(o.name)).sort((a, b) => b.created_at - a.created_at);
    const latest = images[0];
    const movie = outputs.find((o) => MOVIE.test(o.name) && o.size <= MAX_PREVIEW_BYTES);
    if (!latest && movie) {
      await this.showVideo(`/jobs/${this.id}/outputs/${encodeURIComponent(movie.name)}`, movie.name, movie.sha256, { label: movie.name, download: movie.name, note: timeAgo(movie.created_at) });
      return;
    }
    if (!latest) {
      const other = outputs.length ? outputs[outputs.length - 1].name : null;
      this.setPreviewEmpty(
        other ? `The latest output, ${other}, cannot be shown in a browser.` : "No frames yet. The latest rendered frame appears here.",
      );
      return;
    }
    if (latest.name === this.preview.name && latest.sha256 === this.preview.sha) return;
    if (latest.size > MAX_PREVIEW_BYTES) {
      this.setPreviewEmpty(`${latest.name} is too large to preview here.`);
      return;
    }
    let blob;
    try {
      blob = await this.app.api.blob(`/jobs/${this.id}/outputs/${encodeURIComponent(latest.name)}`);
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return;
    }
    if (this.gone) return;
    if (this.preview.url) URL.revokeObjectURL(this.preview.url);
    const url = URL.createObjectURL(blob);
    this.preview = { name: latest.name, sha: latest.sha256, url };
    const frame = latest.frame === null ? "" : `Frame ${latest.frame} · `;
    this.previewBox.replaceChildren(
      h("div", { class: "frame" }, h("img", { src: url, alt: `${frame}${latest.name}, the latest rendered frame`, id: "latest-frame" })),
      h(
        "figcaption",
        {},
        h("strong", {}, `${frame}${latest.name}`),
        h("span", { class: "muted" }, ` · ${timeAgo(latest.created_at)}`),
        " ",
        h("a", { href: url, download: latest.name }, "Download"),
      ),
    );
  }

  /** The preview video a worker made of the finished frames, once there is one. */
  async showPreviewVideo() {
    if (this.preview.name === PREVIEW_NAME) return true;
    return this.showVideo(`/jobs/${this.id}/preview`, PREVIEW_NAME, null, {
      label: "Preview video",
      download: `job-${this.id}-preview.webm`,
      note: "made by the farm from the finished frames",
    });
  }

  /** Show a video from the API in the preview card; false when there is none. */
  async showVideo(path, name, sha, caption) {
    if (this.preview.name === name && this.preview.sha === sha) return true;
    let blob;
    try {
      blob = path.endsWith("/preview") ? await fetchPreview(this.app.api, this.id) : await this.app.api.blob(path);
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return false;
    }
    if (!blob || this.gone) return false;
    if (this.preview.url) URL.revokeObjectURL(this.preview.url);
    const url = URL.createObjectURL(blob);
    this.preview = { name, sha, url };
    this.previewBox.replaceChildren(...videoFigure(url, caption));
    return true;
  }

  setPreviewEmpty(text) {
    if (this.preview.url) URL.revokeObjectURL(this.preview.url);
    this.preview = { name: null, sha: null, url: null };
    this.previewBox.replaceChildren(
      h("div", { class: "preview-empty" }, h("span", { class: "muted" }, text)),
    );
  }
}

/** A form row for one job-type setting: its input and how to read it back. */
function settingField(setting, current) {
  const id = `set-${setting.name}`;
  const help = setting.description ? `${id}-help` : null;
  let input;
  let read;
  if (setting.type === "bool") {
    input = h("input", { id, type: "checkbox", checked: Boolean(current), "aria-describedby": help });
    read = () => input.checked;
  } else if (setting.type === "choice") {
    input = h(
      "select",
      { id, "aria-describedby": help },
      setting.required ? null : h("option", { value: "" }, "(unset)"),
      (setting.choices || []).map((c) => h("option", { value: c, selected: c === current }, c)),
    );
    read = () => input.value || null;
  } else if (setting.type === "int" || setting.type === "float") {
    input = h("input", {
      id,
      type: "number",
      step: setting.type === "int" ? 1 : "any",
      min: setting.minimum,
      max: setting.maximum,
      value: current ?? "",
      required: setting.required,
      "aria-describedby": help,
    });
    read = () => (input.value === "" ? null : Number(input.value));
  } else {
    input = h("input", {
      id,
      type: "text",
      value: current ?? "",
      required: setting.required,
      spellcheck: "false",
      "aria-describedby": help,
    });
    read = () => (input.value === "" ? null : input.value);
  }
  const row = h(
    "div",
    { class: setting.type === "bool" ? "setting check-row" : "setting" },
    h("label", { for: id }, setting.label, setting.required ? h("span", { class: "muted" }, " (required)") : null),
    input,
    help ? h("p", { id: help, class: "help" }, setting.description) : null,
  );
  return { setting, input, read, row };
}
