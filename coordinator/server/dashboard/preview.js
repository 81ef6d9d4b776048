// A job's preview video (GET /jobs/{id}/preview) and its movie outputs, in a <video>.
//
// A media element cannot send the Authorization header, so the file is fetched
// with the token and played from a blob URL, as the latest frame is shown.

import { h } from "./dom.js";

/** The name of the preview a worker makes of an image-sequence job (job_types/preview.py). */
export const PREVIEW_NAME = "farm_preview.webm";
/** Movie outputs a browser may play (a movie job's own file). */
export const MOVIE = /\.(mp4|webm|mov|ogv)$/i;

/** The job's preview video as a blob, or null while it has none. */
export async function fetchPreview(api, jobId) {
  try {
    return await api.blob(`/jobs/${jobId}/preview`);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

/** The card's content for a video: the player, what it is, and a download link. */
export function videoFigure(url, { label, download, note = "" }) {
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
