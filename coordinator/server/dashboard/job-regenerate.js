// The job page's Regenerate dialog: the job type's settings as a form; only what
// changed is sent, and the coordinator says what is wrong.

import { h, plural, toast } from "./dom.js";

/** Ask for changed settings and regenerate the job's tasks; onDone once it worked. */
export async function openRegenerate(app, job, onDone) {
  let types;
  try {
    types = await app.jobTypes();
  } catch (err) {
    app.failed(err);
    return;
  }
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
      const after = await app.api.post(`/jobs/${job.id}/regenerate`, {
        settings: changes,
        keep_completed: keep.checked,
      });
      dialog.close();
      const r = after.regenerated || {};
      toast(`Regenerated: ${plural(r.tasks || 0, "task")}, ${r.kept || 0} kept as finished.`);
      onDone();
    } catch (err) {
      submit.disabled = false;
      if (err.status === 401) {
        dialog.close();
        app.failed(err);
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
