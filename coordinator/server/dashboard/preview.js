// The job page's preview card: the latest rendered frame, or the job's preview
// video (GET /jobs/{id}/preview), or a movie output the browser can play.
//
// A media element cannot send the Authorization header, so each file is fetched
// with the token and shown from a blob URL.

import { h, timeAgo } from "./dom.js";

const IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
const MAX_PREVIEW_BYTES = 40e6;

/** The name of the preview a worker makes of an image-sequence job (job_types/preview.py). */
const PREVIEW_NAME = "farm_preview.webm";
/** Movie outputs a browser may play (a movie job's own file). */
const MOVIE = /\.(mp4|webm|mov|ogv)$/i;

/** The job's preview video as a blob, or null while it has none. */
async function fetchPreview(api, jobId) {
  try {
    return await api.blob(`/jobs/${jobId}/preview`);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

/** The card's content for a video: the player, what it is, and a download link. */
function videoFigure(url, { label, download, note = "" }) {
  return [
    h(
      "div",
      { class: "frame" },
      h("video", {
        src: url,
        controls: true,
        muted: true,
        loop: true,
        playsinline: true,
        preload: "auto",
        id: "preview-video",
        "aria-label": label,
        style: { display: "block", width: "100%", maxHeight: "460px" }, // as .preview img
      }),
    ),
    h(
      "figcaption",
      {},
      h("strong", {}, label),
      note ? h("span", { class: "muted" }, ` · ${note}`) : null,
      " ",
      h("a", { href: url, download }, "Download"),
    ),
  ];
}

/** What the card shows, fetched again when an output arrives (throttled by the page). */
export class PreviewCard {
  constructor(app, jobId, box) {
    this.app = app;
    this.jobId = jobId;
    this.box = box;
    this.shown = { name: null, sha: null, url: null };
    this.closed = false;
  }

  /** An output arrived: a new preview video is fetched even under its old name. */
  outputArrived(name) {
    if (name === PREVIEW_NAME) this.shown.name = null;
  }

  /** The page went away (or the job did): nothing more is fetched or shown. */
  close() {
    if (this.shown.url) URL.revokeObjectURL(this.shown.url);
    this.closed = true;
  }

  async load() {
    if (this.closed) return;
    if (await this.showPreviewVideo()) return;
    let outputs;
    try {
      outputs = (await this.app.api.get(`/jobs/${this.jobId}/outputs`)).outputs;
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return;
    }
    const images = outputs.filter((o) => IMAGE.test(o.name)).sort((a, b) => b.created_at - a.created_at);
    const latest = images[0];
    const movie = outputs.find((o) => MOVIE.test(o.name) && o.size <= MAX_PREVIEW_BYTES);
    if (!latest && movie) {
      await this.showVideo(`/jobs/${this.jobId}/outputs/${encodeURIComponent(movie.name)}`, movie.name, movie.sha256, { label: movie.name, download: movie.name, note: timeAgo(movie.created_at) });
      return;
    }
    if (!latest) {
      const other = outputs.length ? outputs[outputs.length - 1].name : null;
      this.setPreviewEmpty(
        other ? `The latest output, ${other}, cannot be shown in a browser.` : "No frames yet. The latest rendered frame appears here.",
      );
      return;
    }
    if (latest.name === this.shown.name && latest.sha256 === this.shown.sha) return;
    if (latest.size > MAX_PREVIEW_BYTES) {
      this.setPreviewEmpty(`${latest.name} is too large to preview here.`);
      return;
    }
    let blob;
    try {
      blob = await this.app.api.blob(`/jobs/${this.jobId}/outputs/${encodeURIComponent(latest.name)}`);
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return;
    }
    if (this.closed) return;
    if (this.shown.url) URL.revokeObjectURL(this.shown.url);
    const url = URL.createObjectURL(blob);
    this.shown = { name: latest.name, sha: latest.sha256, url };
    const frame = latest.frame === null ? "" : `Frame ${latest.frame} · `;
    this.box.replaceChildren(
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
    if (this.shown.name === PREVIEW_NAME) return true;
    return this.showVideo(`/jobs/${this.jobId}/preview`, PREVIEW_NAME, null, {
      label: "Preview video",
      download: `job-${this.jobId}-preview.webm`,
      note: "made by the farm from the finished frames",
    });
  }

  /** Show a video from the API in the preview card; false when there is none. */
  async showVideo(path, name, sha, caption) {
    if (this.shown.name === name && this.shown.sha === sha) return true;
    let blob;
    try {
      blob = path.endsWith("/preview") ? await fetchPreview(this.app.api, this.jobId) : await this.app.api.blob(path);
    } catch (err) {
      if (err.status !== 404) this.app.failed(err);
      return false;
    }
    if (!blob || this.closed) return false;
    if (this.shown.url) URL.revokeObjectURL(this.shown.url);
    const url = URL.createObjectURL(blob);
    this.shown = { name, sha, url };
    this.box.replaceChildren(...videoFigure(url, caption));
    return true;
  }

  setPreviewEmpty(text) {
    if (this.shown.url) URL.revokeObjectURL(this.shown.url);
    this.shown = { name: null, sha: null, url: null };
    this.box.replaceChildren(
      h("div", { class: "preview-empty" }, h("span", { class: "muted" }, text)),
    );
  }
}
