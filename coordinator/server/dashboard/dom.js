// Small DOM helpers: build elements, format values, tell people what happened.

/** h("button", {class: "x", onclick}, "text", child...) -> an element. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Replace a container's content without losing the person's place: the
 * element that had focus (found again by its data-key) gets it back, so live
 * updates never throw a keyboard user out of a table.
 */
export function replaceKeepingFocus(container, ...children) {
  const active = document.activeElement;
  const inside = active && active !== document.body && container.contains(active);
  const key = inside ? active.dataset.key : undefined;
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  if (!inside) return;
  // The same control, or (when it went away, e.g. "Cancel" on a canceled job)
  // the first control in its place rather than the top of the page.
  const again =
    (key && container.querySelector(`[data-key="${CSS.escape(key)}"]`)) ||
    container.querySelector("button:not([disabled]), a[href], input, select");
  if (again) again.focus({ preventScroll: true });
}

/**
 * Run an action from a button: ignores clicks while it runs, but keeps the
 * button focusable (a disabled button drops the keyboard focus).
 */
export async function busy(button, action) {
  if (button.getAttribute("aria-busy") === "true") return;
  button.setAttribute("aria-busy", "true");
  try {
    await action();
  } finally {
    button.removeAttribute("aria-busy");
  }
}

export const STATUS_LABELS = {
  queued: "Queued",
  active: "Active", // the name the API, the CLI and the add-on use
  paused: "Paused",
  completed: "Completed",
  failed: "Failed",
  canceled: "Canceled",
  idle: "Idle",
  busy: "Busy",
  offline: "Offline",
  resting: "Resting",
};

export function badge(status, extra) {
  return h(
    "span",
    { class: `badge s-${status}` },
    h("span", { class: "dot", "aria-hidden": "true" }),
    STATUS_LABELS[status] || status,
    extra ? h("span", { class: "badge-extra" }, ` · ${extra}`) : null,
  );
}

export function progressBar(fraction, status, label) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
  return h(
    "div",
    {
      class: `bar s-${status || "active"}`,
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": pct,
      "aria-label": label || "Progress",
    },
    h("div", { class: "fill", style: { width: `${pct}%` } }),
  );
}

export function percent(fraction) {
  return `${Math.round((fraction || 0) * 100)}%`;
}

// A job's ETA (the coordinator's eta_seconds) as people say it, or "" when none.
export function timeLeft(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

// How long a finished task took, claim to completion (Blender's start-up and the
// uploads included): "12.4 s"; "" while it has not finished.
export function taskTime(task) {
  if (task.status !== "completed" || !task.claimed_at || !task.completed_at) return "";
  return duration(Math.max(0, task.completed_at - task.claimed_at));
}

// The render time of one of a task's frames as its worker measured it: from
// Blender ready (the scene loaded) to the last frame saved, over its frames.
// null when the task has no frames or its worker did not report both stages.
export function frameSeconds(task) {
  const stages = task.stages || {};
  const frames = (task.frames || []).length;
  if (!frames || stages.blender_ready == null || stages.last_frame_saved == null) return null;
  const took = stages.last_frame_saved - stages.blender_ready;
  return took >= 0 ? took / frames : null;
}

// "4.1 s", "2 min 5 s", "1.5 h"
export function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function dateTime(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    ` ${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

export function timeAgo(seconds) {
  if (!seconds) return "never";
  const diff = Math.max(0, Date.now() / 1000 - seconds);
  if (diff < 5) return "just now";
  if (diff < 60) return `${Math.floor(diff)} s ago`;
  if (diff < 3600) return `${Math.floor(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.floor(diff / 3600)} h ago`;
  return dateTime(seconds);
}

// "08:00": a time of day in the viewer's clock (Unix seconds in)
export function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** Say something to screen reader users (polite; repeated messages are said again). */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

/** A short visible message at the bottom of the screen (errors stay longer). */
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h(
    "div",
    { class: `toast t-${kind}`, role: kind === "error" ? "alert" : null },
    h("span", {}, text),
    h("button", { type: "button", class: "quiet", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 12000 : 5000);
}

/**
 * A modal question. Resolves true when the person confirms. The safe choice
 * has the focus, so Enter never deletes anything by accident.
 */
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    const no = h("button", { type: "button", class: "secondary", onclick: () => dialog.close("no") }, "Keep it");
    const yes = h(
      "button",
      { type: "button", class: danger ? "danger" : "primary", onclick: () => dialog.close("yes") },
      confirm,
    );
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, body),
      h("div", { class: "dialog-buttons" }, no, yes),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** Call fn at most once per `ms` (a number, or a function giving one), a last
 * time after the burst ends. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const gap = typeof ms === "function" ? ms() : ms;
    const wait = Math.max(0, last + gap - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}
