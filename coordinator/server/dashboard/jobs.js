// The jobs list: filters (the API's own filter language), live status and progress.

import {
  STATUS_LABELS,
  announce,
  badge,
  dateTime,
  h,
  percent,
  plural,
  progressBar,
  replaceKeepingFocus,
  throttle,
  timeLeft,
} from "./dom.js";

const STATUSES = ["queued", "active", "paused", "completed", "failed", "canceled"];
const SORTS = [
  ["-created", "Newest first"],
  ["created", "Oldest first"],
  ["-priority", "Highest priority"],
  ["-updated", "Recently updated"],
  ["name", "Name, A to Z"],
  ["status", "Status"],
];
const FILTERS = ["status", "type", "name", "submitter", "after", "before"];
const PAGE = 50;

export class JobsView {
  constructor(app, params) {
    this.app = app;
    this.params = params;
    this.known = new Map(); // job id -> status last shown, to announce changes
    this.refreshSoon = throttle(() => this.load(), 500);
    this.typingTimer = null;
  }

  mount(main) {
    this.app.setTitle("Jobs");
    this.summary = h("p", { class: "summary", id: "jobs-summary", "aria-live": "polite" });
    this.tableBox = h("div", { class: "table-wrap" });
    this.pager = h("nav", { class: "pager", "aria-label": "Pages of jobs" });
    main.replaceChildren(
      h("div", { class: "page-head" }, h("h1", {}, "Jobs"), this.summary),
      this.filterForm(),
      this.tableBox,
      this.pager,
    );
    this.load();
  }

  onEvent(event) {
    if (["job", "job-deleted", "task"].includes(event.type)) this.refreshSoon();
  }

  // ---------------------------------------------------------------- filters
  filterForm() {
    const p = this.params;
    const wanted = new Set((p.get("status") || "").split(",").filter(Boolean));
    const chips = STATUSES.map((status) =>
      h(
        "label",
        { class: `chip s-${status}` },
        h("input", { type: "checkbox", name: "status", value: status, checked: wanted.has(status) }),
        h("span", {}, STATUS_LABELS[status]),
      ),
    );
    const typeSelect = h(
      "select",
      { id: "f-type", name: "type" },
      h("option", { value: "" }, "Any type"),
    );
    this.app.jobTypes().then(
      (types) => {
        for (const t of types) {
          typeSelect.append(h("option", { value: t.name, selected: p.get("type") === t.name }, t.label));
        }
      },
      (err) => this.app.failed(err),
    );
    const text = (id, name, label, placeholder, help) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: id }, label),
        h("input", {
          id,
          name,
          type: "search",
          value: p.get(name) || "",
          placeholder,
          autocomplete: "off",
          spellcheck: "false",
          "aria-describedby": help ? `${id}-help` : null,
        }),
        help ? h("span", { id: `${id}-help`, class: "visually-hidden" }, help) : null,
      );
    const date = (id, name, label) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: id }, label),
        h("input", { id, name, type: "date", value: p.get(name) || "" }),
      );
    const sort = h(
      "select",
      { id: "f-sort", name: "sort" },
      SORTS.map(([value, label]) =>
        h("option", { value, selected: (p.get("sort") || "-created") === value }, label),
      ),
    );
    const form = h(
      "form",
      { class: "filters card", role: "search", "aria-label": "Filter jobs" },
      h("fieldset", { class: "chips" }, h("legend", {}, "Status"), chips),
      h(
        "div",
        { class: "filter-row" },
        text(
          "f-name",
          "name",
          "Name",
          "text or glob, e.g. shot_*",
          "Jobs whose name contains this text, or matches a glob with * ? and [ ]; case is ignored.",
        ),
        h("div", { class: "field" }, h("label", { for: "f-type" }, "Type"), typeSelect),
        text("f-submitter", "submitter", "Submitter", "e.g. ana", "Text or glob; case is ignored."),
        date("f-after", "after", "Submitted from"),
        date("f-before", "before", "Submitted before"),
        h("div", { class: "field" }, h("label", { for: "f-sort" }, "Sort"), sort),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => this.clearFilters(form) },
          "Clear filters",
        ),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply(form);
    });
    form.addEventListener("change", () => this.apply(form));
    form.addEventListener("input", (event) => {
      if (event.target.type !== "search") return;
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.apply(form), 300);
    });
    this.form = form;
    return form;
  }

  apply(form, { offset = 0 } = {}) {
    const data = new FormData(form);
    const next = new URLSearchParams();
    const statuses = data.getAll("status");
    if (statuses.length) next.set("status", statuses.join(","));
    for (const key of ["type", "name", "submitter", "after", "before"]) {
      const value = String(data.get(key) || "").trim();
      if (value) next.set(key, value);
    }
    const sort = data.get("sort");
    if (sort && sort !== "-created") next.set("sort", sort);
    if (offset) next.set("offset", String(offset));
    this.params = next;
    const hash = `#/jobs${next.toString() ? `?${next}` : ""}`;
    history.replaceState(null, "", hash);
    this.app.jobsHash = hash;
    this.load();
  }

  clearFilters(form) {
    form.reset();
    for (const input of form.querySelectorAll("input")) {
      if (input.type === "checkbox") input.checked = false;
      else input.value = "";
    }
    form.querySelector("#f-sort").value = "-created";
    this.apply(form);
  }

  filtered() {
    return FILTERS.some((key) => this.params.get(key));
  }

  // ------------------------------------------------------------------ table
  async load() {
    const query = { limit: PAGE };
    for (const key of [...FILTERS, "sort", "offset"]) query[key] = this.params.get(key);
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    let page;
    try {
      page = await this.app.api.get("/jobs", query);
      if (ticket !== this.ticket) return; // a newer answer (newer filters) is on its way
    } catch (err) {
      if (ticket !== this.ticket) return;
      if (err.status === 400) {
        this.summary.textContent = "";
        this.tableBox.replaceChildren(h("p", { class: "form-message is-error", role: "alert" }, err.message));
        return;
      }
      this.app.failed(err);
      return;
    }
    this.render(page);
  }

  render(page) {
    const { jobs, total, offset } = page;
    this.summary.textContent =
      total === 0 ? "" : `${plural(total, "job")}${this.filtered() ? " match" : ""}`;
    this.announceChanges(jobs);
    if (!jobs.length) {
      replaceKeepingFocus(this.tableBox, this.empty(total));
      this.pager.replaceChildren();
      return;
    }
    const rows = jobs.map((job) => this.row(job));
    const table = h(
      "table",
      { class: "data jobs" },
      h("caption", { class: "visually-hidden" }, "Jobs"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["ID", "Name", "Status", "Progress", "Tasks", "Type", "Priority", "Submitter", "Submitted"].map(
            (text) => h("th", { scope: "col", class: `c-${text.toLowerCase()}` }, text),
          ),
        ),
      ),
      h("tbody", {}, rows),
    );
    replaceKeepingFocus(this.tableBox, table);
    this.renderPager(total, offset, jobs.length);
  }

  row(job) {
    const counts = job.task_counts || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const name = h("a", { href: `#/jobs/${job.id}`, dataset: { key: `job-${job.id}` } }, job.name);
    const warning = job.warning
      ? h(
          "span",
          { class: "warn-icon", title: job.warning },
          h("span", { "aria-hidden": "true" }, "⚠"),
          h("span", { class: "visually-hidden" }, `Warning: ${job.warning}`),
        )
      : null;
    return h(
      "tr",
      { dataset: { id: job.id, status: job.status } },
      h("td", { class: "c-id num muted" }, `#${job.id}`),
      h("td", { class: "c-name" }, name, warning),
      h("td", { class: "c-status", title: job.status_reason || null }, badge(job.status)),
      h(
        "td",
        { class: "c-progress" },
        h(
          "div",
          { class: "progress-cell" },
          progressBar(job.progress, job.status, `Progress of ${job.name}`),
          h("span", { class: "num" }, percent(job.progress)),
        ),
        job.eta_seconds == null ? null : h("span", { class: "eta muted" }, timeLeft(job.eta_seconds)),
      ),
      h("td", { class: "c-tasks num" }, `${counts.completed || 0} / ${total}`),
      h("td", { class: "c-type muted" }, job.type),
      h("td", { class: "c-priority num" }, job.priority),
      h("td", { class: "c-submitter muted" }, job.submitter || "–"),
      h("td", { class: "c-submitted muted num" }, dateTime(job.created_at)),
    );
  }

  empty(total) {
    if (this.filtered()) {
      return h(
        "div",
        { class: "empty card" },
        h("p", {}, "No jobs match these filters."),
        h("button", { type: "button", class: "secondary", onclick: () => this.clearFilters(this.form) }, "Clear filters"),
      );
    }
    return h(
      "div",
      { class: "empty card" },
      h("p", { class: "empty-title" }, total === 0 && !this.params.get("offset") ? "No jobs yet." : "No jobs on this page."),
      h(
        "p",
        { class: "muted" },
        "Submit one from Blender (Render Properties, Farm panel) or from a terminal: ",
        h("code", {}, "lanfarm submit shot.blend --frames 1-100"),
      ),
    );
  }

  renderPager(total, offset, shown) {
    if (total <= shown && !offset) {
      this.pager.replaceChildren();
      return;
    }
    const go = (to) => this.apply(this.form, { offset: to });
    this.pager.replaceChildren(
      h(
        "button",
        { type: "button", class: "secondary", disabled: offset <= 0, onclick: () => go(Math.max(0, offset - PAGE)) },
        "← Previous",
      ),
      h("span", { class: "muted" }, `${offset + 1}–${offset + shown} of ${total}`),
      h(
        "button",
        { type: "button", class: "secondary", disabled: offset + shown >= total, onclick: () => go(offset + PAGE) },
        "Next →",
      ),
    );
  }

  announceChanges(jobs) {
    const changes = [];
    for (const job of jobs) {
      const before = this.known.get(job.id);
      if (before && before !== job.status) {
        changes.push(`${job.name}: ${STATUS_LABELS[job.status] || job.status}`);
      }
      this.known.set(job.id, job.status);
    }
    if (changes.length) announce(changes.slice(0, 3).join(". "));
  }
}
