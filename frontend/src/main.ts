// The app shell: who is logged in, the navigation bar for their roles, and the page of the current address.

import "./styles.css";
import { session } from "./api/foundation";
import { createContext, type AppContext, type Cleanup, type Page } from "./context";
import { ROUTES } from "./pages";
import { findRoute, interceptLinks, isCurrentLink, navigate, type Params } from "./router";
import { clear, h } from "./ui/dom";
import { clearNotices, installFeedback, showError, UNAUTHORIZED_EVENT } from "./ui/feedback";

async function start(): Promise<void> {
  const app = document.getElementById("app") as HTMLElement;
  installFeedback(document.body);
  interceptLinks(document.body);
  const header = h("header", { class: "top" });
  const main = h("main", { id: "page" });
  app.append(header, main);

  let context: AppContext;
  try {
    context = createContext(await session.me());
  } catch (error) {
    clear(main, h("p", { class: "empty" }, "The platform could not be reached."));
    showError(error, "Loading your session");
    return;
  }

  let cleanup: Cleanup | void;
  let generation = 0;
  const render = async (): Promise<void> => {
    generation += 1;
    const mine = generation;
    cleanup?.();
    cleanup = undefined;
    clearNotices();
    const path = location.pathname;
    if (!context.me.id && path !== "/login") {
      navigate(`/login?next=${encodeURIComponent(path + location.search)}`, true);
      return;
    }
    renderHeader(header, context);
    const [page, params] = resolve(path);
    const root = h("div", { class: "page" });
    clear(main, root);
    try {
      const result = await page(root, params, context);
      if (mine === generation) {
        cleanup = result;
        // The page has drawn what it loaded (browser tests and the UI benchmark wait for this).
        root.dataset.loaded = "1";
      } else result?.();
    } catch (error) {
      if (mine !== generation) return;
      root.append(h("p", { class: "empty" }, "This page could not be loaded."));
      showError(error);
    }
  };

  window.addEventListener("popstate", () => void render());
  window.addEventListener(UNAUTHORIZED_EVENT, () => {
    if (location.pathname === "/login") return;
    context.setMe({ id: null, username: null, roles: [] });
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
  });
  // Nothing fails silently: a rejected promise no page caught is still shown in words.
  window.addEventListener("unhandledrejection", (event) => {
    if (event.reason instanceof DOMException && event.reason.name === "AbortError") return;
    showError(event.reason);
  });
  await render();
}

function resolve(path: string): [Page, Params] {
  const found = findRoute(ROUTES, path);
  return found ? [found[0].page, found[1]] : [notFound, {}];
}

const notFound: Page = (root) => {
  root.append(
    h("h1", {}, "Not found"),
    h("p", {}, "There is no page at this address. ", h("a", { href: "/" }, "Go to the worklist")),
  );
};

function renderHeader(header: HTMLElement, context: AppContext): void {
  if (!context.me.id) {
    clear(header, h("span", { class: "brand" }, "AI-cell"));
    return;
  }
  const links = ROUTES.flatMap(({ path, nav }) =>
    nav && context.has(...nav.roles)
      ? [
          h(
            "a",
            { href: path, class: isCurrentLink(path, nav.also ?? [], location.pathname) ? "current" : "" },
            nav.label,
          ),
        ]
      : [],
  );
  const logout = h("button", { class: "link", title: "log out" }, "Log out");
  logout.addEventListener("click", async () => {
    try {
      await session.logout();
      context.setMe({ id: null, username: null, roles: [] });
      navigate("/login");
    } catch (error) {
      showError(error, "Logging out");
    }
  });
  clear(
    header,
    h("a", { class: "brand", href: "/" }, "AI-cell"),
    h("nav", {}, links),
    h(
      "span",
      { class: "user" },
      `${context.me.username} (${context.me.roles.join(", ")})`,
      " ",
      h("span", { class: "hint" }, "? keys"),
      logout,
    ),
  );
}

void start();
