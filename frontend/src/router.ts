// Client-side routes: the browser's address is the page's state (deep links work because Django serves the
// app shell for every non-API path).

export type Params = Record<string, string>;

/** "/fields/:id" against "/fields/12" -> {id: "12"}; null when it does not match. */
export function matchRoute(pattern: string, path: string): Params | null {
  const want = trimSlashes(pattern).split("/");
  const have = trimSlashes(path).split("/");
  if (want.length !== have.length) return null;
  const params: Params = {};
  for (let i = 0; i < want.length; i += 1) {
    if (want[i].startsWith(":")) {
      if (!have[i]) return null;
      params[want[i].slice(1)] = decodeURIComponent(have[i]);
    } else if (want[i] !== have[i]) {
      return null;
    }
  }
  return params;
}

/** The first route whose pattern matches `path`, with its parameters; null when none does. */
export function findRoute<R extends { path: string }>(routes: readonly R[], path: string): [R, Params] | null {
  for (const route of routes) {
    const params = matchRoute(route.path, path);
    if (params) return [route, params];
  }
  return null;
}

/**
 * Whether a navigation link is the current one: "/" only at "/" itself, any other link for its own address and
 * those under it; `also` names further addresses that belong to it (the worklist's fields).
 */
export function isCurrentLink(linkPath: string, also: readonly string[], pathname: string): boolean {
  const under = (prefix: string) => pathname === prefix || pathname.startsWith(`${prefix}/`);
  return (linkPath === "/" ? pathname === "/" : under(linkPath)) || also.some(under);
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** Same-origin links inside the app navigate without a page load. */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener("click", (event) => {
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    )
      return;
    const link = (event.target as Element).closest?.("a");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/admin/"))
      return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}
