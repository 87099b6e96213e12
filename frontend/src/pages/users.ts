// Users (admin): create people with their roles, give and take roles, deactivate (never delete: the audit trail
// keeps their names) and reset passwords. Every refusal shows next to the field the server names.

import { users as userApi, type User } from "../api/lab";
import type { Role } from "../api/shapes";
import type { Page } from "../context";
import { formatDate, h } from "../ui/dom";
import { dialog, showError, showInfo } from "../ui/feedback";
import { formValues, labelled, showProblems } from "../ui/forms";
import { bindKeys } from "../ui/keys";

const ROLES: readonly Role[] = ["annotator", "adjudicator", "admin", "researcher"];

export const usersPage: Page = async (root, _params, context) => {
  const roleBoxes = h(
    "fieldset",
    { class: "checks", name: "roles" },
    h("legend", {}, "Roles"),
    ROLES.map((role) => h("label", {}, h("input", { type: "checkbox", name: "role", value: role }), ` ${role}`)),
    h("span", { class: "field-error", dataset: { for: "roles" } }),
  );
  const form = h(
    "form",
    { id: "user-form", class: "intake-form", novalidate: true },
    labelled("Username", h("input", { name: "username", id: "new-username", autocomplete: "off" })),
    labelled("E-mail", h("input", { name: "email", id: "new-email", type: "email" })),
    labelled(
      "Password",
      h("input", { name: "password", id: "new-password", type: "password", autocomplete: "new-password" }),
      "tell it to the person; at least 8 characters, not common",
    ),
    roleBoxes,
    h("button", { type: "submit", class: "primary" }, "Create user"),
  );
  const list = h("div", { id: "user-list" });
  root.append(
    h("h1", {}, "Users"),
    h("section", { class: "card" }, h("h2", {}, "New user"), form),
    h("section", {}, h("h2", {}, "Everyone"), list),
  );

  const draw = (people: User[]): void => {
    list.replaceChildren(
      h(
        "table",
        { class: "grid users" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["User", "E-mail", ...ROLES, "State", "Last login", ""].map((t) => h("th", {}, t)),
          ),
        ),
        h("tbody", {}, people.map(row)),
      ),
    );
  };

  const row = (user: User): HTMLElement => {
    const self = user.id === context.me.id;
    const cells = ROLES.map((role) => {
      const box = h("input", { type: "checkbox", "aria-label": `${role} role of ${user.username}`, dataset: { role } });
      box.checked = user.roles.includes(role);
      box.addEventListener("change", async () => {
        const roles = ROLES.filter((r) => (r === role ? box.checked : user.roles.includes(r)));
        try {
          await userApi.update(user.id, { roles });
          showInfo(`${user.username}: ${roles.join(", ") || "no role"}.`);
        } catch (error) {
          box.checked = !box.checked;
          showError(error, `Changing the roles of ${user.username}`);
        }
        await reload();
      });
      return h("td", { class: "center" }, box);
    });
    const toggle = h(
      "button",
      { type: "button", class: "deactivate", disabled: self && user.is_active },
      user.is_active ? "Deactivate" : "Reactivate",
    );
    toggle.addEventListener("click", async () => {
      try {
        await userApi.update(user.id, { is_active: !user.is_active });
        showInfo(`${user.username} ${user.is_active ? "deactivated" : "reactivated"}.`);
      } catch (error) {
        showError(error, `Changing ${user.username}`);
      }
      await reload();
    });
    const reset = h("button", { type: "button", class: "reset-password" }, "Reset password");
    reset.addEventListener("click", () => void resetPassword(user));
    return h(
      "tr",
      { dataset: { user: user.username }, class: user.is_active ? "" : "inactive" },
      h("td", {}, user.username, user.is_staff ? h("span", { class: "muted small" }, " staff") : null),
      h("td", {}, user.email || "–"),
      ...cells,
      h("td", { class: "state" }, user.is_active ? "active" : "deactivated"),
      h("td", {}, formatDate(user.last_login)),
      h("td", {}, toggle, " ", reset),
    );
  };

  const resetPassword = async (user: User): Promise<void> => {
    const input = h("input", {
      type: "password",
      name: "password",
      id: "reset-password",
      autocomplete: "new-password",
    });
    const body = h("form", { class: "intake-form" }, labelled(`New password for ${user.username}`, input));
    for (;;) {
      const choice = await dialog("Reset password", body, [
        { label: "Cancel", value: "cancel" },
        { label: "Set password", value: "set", primary: true },
      ]);
      if (choice !== "set") return;
      try {
        await userApi.setPassword(user.id, input.value);
        showInfo(`New password set for ${user.username}.`);
        return;
      } catch (error) {
        if (!showProblems(body, error)) {
          showError(error);
          return;
        }
      }
    }
  };

  const reload = async (): Promise<void> => draw(await userApi.all());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    const roles = [...form.querySelectorAll<HTMLInputElement>("input[name=role]:checked")].map((b) => b.value as Role);
    try {
      const user = await userApi.create({
        username: values.username ?? "",
        email: values.email ?? "",
        password: values.password ?? "",
        roles,
      });
      form.reset();
      showInfo(`${user.username} created (${user.roles.join(", ")}).`);
      await reload();
    } catch (error) {
      if (!showProblems(form, error)) showError(error);
    }
  });

  await reload();
  return bindKeys("global", null, {});
};
