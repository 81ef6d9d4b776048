// The job page's tasks: a page of the table at a time, filtered by status, each
// task's actions, and the live log tail of the one whose Log is pressed.

import {
  STATUS_LABELS,
  badge,
  busy,
  duration,
  frameSeconds,
  h,
  percent,
  progressBar,
  replaceKeepingFocus,
  taskTime,
  throttle,
  toast,
} from "./dom.js";

/** What the render time of a frame measures, for a heading's or a value's title. */
export const FRAME_TIME_MEANS =
  "Measured by the worker: from Blender ready (scene loaded) to the last frame saved, divided by the task's frames; start-up and uploads left out";

// The table's columns: heading, and what it means when that needs saying.
const COLUMNS = [
  ["#"],
  ["Task"],
  ["Status"],
  ["Progress"],
  ["Time", "Claim to completion: Blender's start-up and the uploads included"],
  ["Render a frame", FRAME_TIME_MEANS],
  ["Tries"],
  ["Worker"],
  ["Activity"],
  ["Actions"],
];
const TASK_PAGE = 100; // rows per page: a 100,000-task job is fetched a page at a time
const LOG_TAIL = 16384;

/** A task's render time a frame, or an empty cell when it measured none. */
function frameCell(task) {
  const seconds = frameSeconds(task);
  return h("td", { class: "num frame-time" }, seconds === null ? "" : duration(seconds));
}

export class TaskTable {
  /** box: the tasks card; logBox: the log card; reload(): the page fetches its job and this page again. */
  constructor(app, { box, logBox, reload }) {
    this.app = app;
    this.box = box;
    this.logBox = logBox;
    this.reload = reload;
    this.job = null; // the job last drawn
    this.rows = []; // the page of tasks shown
    this.total = 0;
    this.offset = 0;
    this.status = "";
    this.workers = new Map(); // id -> name
    this.logTask = null; // the task whose log is shown
    this.closed = false;
    this.logSoon = throttle(() => this.loadLog(), 1000);
  }

  /** The query of the page to fetch (GET /jobs/{id}/tasks). */
  query() {
    const query = { limit: TASK_PAGE, offset: this.offset };
    if (this.status) query.status = this.status;
    return query;
  }

  /** Keep a fetched page; false when it came back empty under us (fewer tasks of
   * that status now): then the offset moved to the last page, to fetch again. */
  take(page) {
    if (page.tasks.length === 0 && page.total > 0 && this.offset > 0) {
      this.offset = Math.floor((page.total - 1) / TASK_PAGE) * TASK_PAGE;
      return false;
    }
    this.rows = page.tasks;
    this.total = page.total;
    return true;
  }

  /** A task changed: its log follows when it is the one shown. */
  taskChanged(taskId) {
    if (taskId === this.logTask) this.logSoon();
  }

  /** The job went away: no more logs; the log card hides. */
  close() {
    this.closed = true;
    this.logBox.hidden = true;
  }

  render(job) {
    this.job = job;
    const tasks = this.rows;
    const { total, offset, status } = this;
    const body = tasks.map((task) => this.row(task));
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
          COLUMNS.map(([text, title]) => h("th", { scope: "col", title }, text)),
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
        onchange: (e) => this.show(e.currentTarget.value, 0),
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
              onclick: () => this.show(status, Math.max(0, offset - TASK_PAGE)),
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
              onclick: () => this.show(status, offset + TASK_PAGE),
            },
            "Next →",
          ),
        )
      : null;
    replaceKeepingFocus(
      this.box,
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

  show(status, offset) {
    this.status = status;
    this.offset = offset;
    this.reload();
  }

  row(task) {
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
      frameCell(task),
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
        await this.reload();
      } catch (err) {
        this.app.failed(err);
      }
    });
  }

  // ------------------------------------------------------------------- log
  showLog(taskId) {
    this.logTask = this.logTask === taskId ? null : taskId;
    if (this.job) this.render(this.job);
    if (this.logTask === null) {
      this.logBox.hidden = true;
      return;
    }
    this.logBox.hidden = false;
    this.loadLog();
  }

  async loadLog() {
    const taskId = this.logTask;
    if (taskId === null || this.closed) return;
    const task = this.rows.find((t) => t.id === taskId);
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
}
