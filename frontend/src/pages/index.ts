// The route table: each page is a module that renders into the page root and returns its cleanup.

import type { Page } from "../context";
import { casesPage } from "./cases";
import { crosscheckFieldPage, crosscheckListPage } from "./crosscheck";
import { exportsPage } from "./exports";
import { galleryPage } from "./gallery";
import { loginPage } from "./login";
import { modelsPage } from "./models";
import { reportPage } from "./report";
import { reviewQueuePage } from "./reviewQueue";
import { worklistPage } from "./worklist";

/** A page whose module (and its libraries) loads on first visit: OpenSeadragon and Annotorious are ~1 MB. */
function lazy(load: () => Promise<Page>): Page {
  return async (root, params, context) => (await load())(root, params, context);
}

const annotatorPage = lazy(async () => (await import("./annotator")).annotatorPage);

export const PAGES: Array<[string, Page]> = [
  ["/login", loginPage],
  ["/", worklistPage],
  ["/fields/:id", annotatorPage],
  ["/gallery/:scope/:id", galleryPage],
  ["/review", reviewQueuePage],
  ["/crosscheck", crosscheckListPage],
  ["/crosscheck/:field", crosscheckFieldPage],
  ["/cases", casesPage],
  ["/cases/:id", reportPage],
  ["/exports", exportsPage],
  ["/models", modelsPage],
];
