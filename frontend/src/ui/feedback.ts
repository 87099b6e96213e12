// What the user is told: errors in words (kept until dismissed), short notices, a progress bar for anything that
// takes a moment, and modal dialogs that the keyboard can answer.

import { ApiError, describeError, onActivity } from "../api/http";
import { h } from "./dom";

let notices: HTMLElement;
let bar: HTMLElement;

export function installFeedback(root: HTMLElement): void {
  notices = h("div", { class: "notices", role: "status", "aria-live": "polite" });
  bar = h("div", { class: "activity", role: "progressbar", "aria-label": "working", hidden: true });
  root.append(bar, notices);
  // Requests that answer within 250 ms show nothing; anything slower shows the bar until all are done.
  let timer: ReturnType<typeof setTimeout> | null = null;
  onActivity((pending) => {
    if (pending > 0 && timer === null && bar.hidden) {
      timer = setTimeout(() => {
        bar.hidden = false;
        timer = null;
      }, 250);
    } else if (pending === 0) {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      bar.hidden = true;
    }
  });
}

/** Fired when the server says the session is gone (401): the shell sends the user to the login page. */
export const UNAUTHORIZED_EVENT = "aicell:unauthorized";

/** An API error or exception, in words, until the user dismisses it. */
export function showError(error: unknown, context = ""): void {
  if (error instanceof ApiError && error.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
  const text = describeError(error);
  console.error(context, error);
  notice("error", context ? `${context}: ${text}` : text, 0);
}

export function showInfo(text: string, seconds = 4): void {
  notice("info", text, seconds);
}

function notice(kind: "error" | "info", text: string, seconds: number): void {
  const close = h("button", { class: "close", "aria-label": "dismiss", title: "dismiss" }, "×");
  const lines = text.split("\n");
  const item = h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h(
      "div",
      { class: "text" },
      h("strong", {}, lines[0]),
      lines.length > 1
        ? h(
            "ul",
            {},
            lines.slice(1).map((line) => h("li", {}, line)),
          )
        : null,
    ),
    close,
  );
  close.addEventListener("click", () => item.remove());
  notices.append(item);
  if (seconds > 0) setTimeout(() => item.remove(), seconds * 1000);
}

export function clearNotices(): void {
  notices?.replaceChildren();
}

/** Run an action with a labelled progress line; its failure is shown in words and re-thrown. */
export async function withProgress<T>(
  label: string,
  action: (report: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  const text = h("span", {}, `${label}…`);
  const meter = h("progress", { max: 1 });
  const line = h("div", { class: "notice progress", role: "status" }, text, meter);
  const timer = setTimeout(() => notices.append(line), 300);
  try {
    return await action((done, total) => {
      meter.max = Math.max(total, 1);
      meter.value = done;
      text.textContent = `${label}: ${done} of ${total}`;
    });
  } finally {
    clearTimeout(timer);
    line.remove();
  }
}

export interface DialogButton {
  label: string;
  value: string;
  /** the key that presses it (shown on the button) */
  key?: string;
  primary?: boolean;
}

let openDialogs = 0;

export function dialogOpen(): boolean {
  return openDialogs > 0;
}

/** A modal dialog; resolves with the pressed button's value, or "" on Escape. */
export function dialog(title: string, body: Node | string, buttons: DialogButton[], className = ""): Promise<string> {
  return new Promise((resolve) => {
    const backdrop = h("div", { class: "backdrop" });
    const box = h("div", { class: `dialog ${className}`, role: "dialog", "aria-modal": "true", "aria-label": title });
    const finish = (value: string): void => {
      window.removeEventListener("keydown", onKey, true);
      backdrop.remove();
      openDialogs -= 1;
      resolve(value);
    };
    const onKey = (event: KeyboardEvent): void => {
      const button = buttons.find((b) => b.key && b.key.toLowerCase() === event.key.toLowerCase());
      if (event.key === "Escape") finish("");
      else if (button) finish(button.value);
      else if (event.key === "Enter") finish(buttons.find((b) => b.primary)?.value ?? "");
      else return;
      event.preventDefault();
      event.stopPropagation();
    };
    box.append(
      h("h2", {}, title),
      h("div", { class: "dialog-body" }, body),
      h(
        "div",
        { class: "dialog-buttons" },
        buttons.map((b) =>
          h(
            "button",
            { class: b.primary ? "primary" : "", onclick: () => finish(b.value), dataset: { value: b.value } },
            b.label,
            b.key ? h("kbd", {}, b.key) : null,
          ),
        ),
      ),
    );
    backdrop.append(box);
    document.body.append(backdrop);
    openDialogs += 1;
    window.addEventListener("keydown", onKey, true);
    box.querySelector<HTMLButtonElement>("button.primary")?.focus();
  });
}

export async function confirmAction(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return (
    (await dialog(title, text, [
      { label: "Cancel", value: "", key: "Escape" },
      { label: confirmLabel, value: "yes", primary: true, key: "Enter" },
    ])) === "yes"
  );
}
