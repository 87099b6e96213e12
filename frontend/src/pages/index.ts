// The route table: every page of the app, its address, and its entry in the navigation bar (label and the roles
// that see it). A new page is one row here; the shell (main.ts) builds the navigation from these rows.

import type { Role } from "../api/shapes";
import type { Page } from "../context";
import { h } from "../ui/dom";
import { casesPage } from "./cases";
import { crosscheckFieldPage, crosscheckListPage } from "./crosscheck";
import { exportsPage } from "./exports";
import { galleryPage } from "./gallery";
import { assignPage } from "./assign";
import { homePage } from "./home";
import { intakePage } from "./intake";
import { loginPage } from "./login";
import { modelsPage } from "./models";
import { reportPage } from "./report";
import { reviewQueuePage } from "./reviewQueue";
import { usersPage } from "./users";
import { worklistPage } from "./worklist";

export interface NavEntry {
  label: string;
  roles: readonly Role[];
  /** other addresses that belong to this entry (it shows as current there too) */
  also?: readonly string[];
}

export interface Route {
  /** "/fields/:id": a ":name" part is a parameter */
  path: string;
  page: Page;
  /** its link in the navigation bar; pages reached from other pages have none */
  nav?: NavEntry;
}

/** A page whose module (and its libraries) loads on first visit: OpenSeadragon and Annotorious are ~1 MB. */
function lazy(load: () => Promise<Page>): Page {
  return async (root, params, context) => (await load())(root, params, context);
}

const annotatorPage = lazy(async () => (await import("./annotator")).annotatorPage);

const EVERYONE: readonly Role[] = ["annotator", "adjudicator", "admin", "researcher"];

/** The start page: the home summary of every role, then the worklist for those who annotate or adjudicate. */
const startPage: Page = async (root, params, context) => {
  const summary = h("div", { id: "home" });
  const worklist = h("div", { id: "worklist" });
  root.append(summary, worklist);
  await homePage(summary, params, context);
  if (!context.has("annotator", "adjudicator")) return;
  return (await worklistPage(worklist, params, context)) ?? undefined;
};

/** In the order of the navigation bar. */
export const ROUTES: readonly Route[] = [
  { path: "/login", page: loginPage },
  { path: "/", page: startPage, nav: { label: "Home", roles: EVERYONE, also: ["/fields"] } },
  { path: "/intake", page: intakePage, nav: { label: "Intake", roles: ["admin"] } },
  { path: "/assign", page: assignPage, nav: { label: "Assignment", roles: ["admin", "adjudicator"] } },
  { path: "/fields/:id", page: annotatorPage },
  { path: "/gallery/:scope/:id", page: galleryPage },
  { path: "/review", page: reviewQueuePage, nav: { label: "Review queue", roles: ["annotator", "adjudicator"] } },
  { path: "/crosscheck", page: crosscheckListPage, nav: { label: "Cross-check", roles: ["annotator", "adjudicator"] } },
  { path: "/crosscheck/:field", page: crosscheckFieldPage },
  { path: "/cases", page: casesPage, nav: { label: "Cases", roles: EVERYONE } },
  { path: "/cases/:id", page: reportPage },
  { path: "/models", page: modelsPage, nav: { label: "Models", roles: ["admin"] } },
  { path: "/exports", page: exportsPage, nav: { label: "Exports", roles: ["researcher", "admin"] } },
  { path: "/users", page: usersPage, nav: { label: "Users", roles: ["admin"] } },
];
