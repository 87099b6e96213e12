// The worklist: my fields with the state of my work on each, counts and progress, grouped by case.
// With the double-review branch the list comes from the assignments API; on the foundation alone it is built from
// the fields and my own annotation sets.

import { loadWorklist, type WorkItem } from "../api/worklist";
import type { Page } from "../context";
import { h, words } from "../ui/dom";
import { bindKeys } from "../ui/keys";

export const worklistPage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Worklist"), h("p", { class: "muted" }, "Loading your fields…"));
  const { items, source } = await loadWorklist(context.me);
  root.replaceChildren(h("h1", {}, "Worklist"));
  if (!items.length) {
    root.append(h("p", { class: "empty" }, "Nothing is assigned to you at the moment."));
    return bindKeys("global", null, {});
  }
  const done = items.filter((item) => item.done).length;
  root.append(
    h(
      "div",
      { class: "progress-line" },
      h("progress", { max: items.length, value: done, "aria-label": "fields done" }),
      ` ${done} of ${items.length} fields done`,
      h("span", { class: "muted" }, ` · ${source}`),
    ),
  );
  const byCase = new Map<string, WorkItem[]>();
  for (const item of items) byCase.set(item.caseCode, [...(byCase.get(item.caseCode) ?? []), item]);
  for (const [caseCode, caseItems] of byCase) {
    const first = caseItems[0];
    root.append(
      h(
        "section",
        { class: "case-block" },
        h(
          "h2",
          {},
          `Case ${caseCode}`,
          " ",
          h("a", { class: "small", href: `/gallery/case/${first.caseId}` }, "cell gallery"),
          " ",
          h("a", { class: "small", href: `/cases/${first.caseId}` }, "report"),
        ),
        h(
          "table",
          { class: "grid worklist" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["", "Field", "Smear", "Field status", "My work", "Cells", ""].map((t) => h("th", {}, t)),
            ),
          ),
          h(
            "tbody",
            {},
            caseItems.map((item) =>
              h(
                "tr",
                { dataset: { field: String(item.fieldId) } },
                h(
                  "td",
                  {},
                  h("img", {
                    class: "thumb-small",
                    src: `/api/v1/fields/${item.fieldId}/thumbnail`,
                    alt: `field ${item.fieldId}`,
                    loading: "lazy",
                  }),
                ),
                h("td", {}, h("a", { href: `/fields/${item.fieldId}` }, `#${item.fieldId}`)),
                h("td", {}, h("a", { href: `/gallery/smear/${item.smearId}` }, item.smearLabel)),
                h("td", {}, h("span", { class: `status ${item.fieldStatus}` }, words(item.fieldStatus))),
                h("td", {}, h("span", { class: `state ${item.stateClass}` }, item.state)),
                h("td", { class: "num" }, item.cellCount ?? "–"),
                h("td", {}, h("a", { class: "button", href: item.href }, item.action)),
              ),
            ),
          ),
        ),
      ),
    );
  }
  return bindKeys("global", null, {});
};
