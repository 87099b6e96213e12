// Login with the session API (the GET before it set the CSRF cookie).

import { session } from "../api/foundation";
import { ApiError, describeError } from "../api/http";
import type { Page } from "../context";
import { navigate } from "../router";
import { h } from "../ui/dom";

export const loginPage: Page = (root, _params, context) => {
  const username = h("input", {
    id: "username",
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
  });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const problem = h("div", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, "AI-cell"),
    h("p", { class: "muted" }, "Bone-marrow smear annotation and review"),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    problem,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = "Logging in…";
    problem.textContent = "";
    try {
      context.setMe(await session.login(username.value, password.value));
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
    } catch (error) {
      problem.textContent = error instanceof ApiError && error.status === 400 ? error.message : describeError(error);
      password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  root.append(form);
  username.focus();
};
