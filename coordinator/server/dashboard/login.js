// Sign in with the farm token.

import { h } from "./dom.js";

export class LoginView {
  constructor(app, message = "", kind = "info") {
    this.app = app;
    this.message = message;
    this.kind = kind; // "error" when the last sign-in went wrong
  }

  mount(main) {
    this.app.setTitle("Sign in");
    const input = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "current-password",
      spellcheck: "false",
      required: true,
      "aria-describedby": "token-help login-message",
    });
    const remember = h("input", { id: "remember", type: "checkbox" });
    const message = h("p", { id: "login-message", class: "form-message", role: "alert" }, this.message);
    const button = h("button", { type: "submit", class: "primary wide" }, "Sign in");
    const form = h(
      "form",
      { class: "login-card", "aria-labelledby": "login-title", novalidate: true },
      h("img", { src: "/ui/icon.svg", alt: "", width: 44, height: 44, class: "login-logo" }),
      h("h1", { id: "login-title" }, this.app.farmName),
      h("p", { class: "muted" }, "Sign in to follow and manage the farm's jobs and workers."),
      // for password managers: the token belongs to this farm
      h("input", { type: "text", name: "username", autocomplete: "username", value: this.app.farmName, hidden: true }),
      h("label", { for: "token" }, "Farm token"),
      input,
      h(
        "p",
        { id: "token-help", class: "help" },
        "The coordinator prints it when it starts; it is also in token.txt in its data folder.",
      ),
      h("label", { class: "check" }, remember, "Remember on this computer"),
      message,
      button,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        this.fail(input, message, "Enter the farm token.");
        return;
      }
      button.disabled = true;
      button.textContent = "Signing in…";
      const problem = await this.app.trySignIn(token, remember.checked);
      if (problem) {
        button.disabled = false;
        button.textContent = "Sign in";
        this.fail(input, message, problem);
      }
    });
    main.replaceChildren(h("div", { class: "login-wrap" }, form));
    if (this.message && this.kind === "error") message.classList.add("is-error");
    input.focus();
  }

  fail(input, message, text) {
    message.textContent = text;
    message.classList.add("is-error");
    input.setAttribute("aria-invalid", "true");
    input.focus();
    input.select();
  }
}
