// The case list: every case with its patient, confirmed diagnosis and smears, linking to report and gallery.

import { cases as caseApi } from "../api/foundation";
import type { Page } from "../context";
import { h } from "../ui/dom";
import { bindKeys } from "../ui/keys";

export const casesPage: Page = async (root) => {
  const search = h("input", {
    type: "search",
    placeholder: "case code",
    "aria-label": "filter cases by code",
    value: new URLSearchParams(location.search).get("code") ?? "",
  });
  const table = h("div");
  root.append(h("h1", {}, "Cases"), h("div", { class: "form-row" }, search), table);

  const load = async (): Promise<void> => {
    const page = await caseApi.list({ code: search.value.trim() || undefined });
    table.replaceChildren(
      page.results.length
        ? h(
            "table",
            { class: "grid" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Case", "Patient", "Collected", "Confirmed diagnosis", "Smears", ""].map((t) => h("th", {}, t)),
              ),
            ),
            h(
              "tbody",
              {},
              page.results.map((c) =>
                h(
                  "tr",
                  { dataset: { case: String(c.id) } },
                  h("td", {}, h("a", { href: `/cases/${c.id}` }, c.code)),
                  h("td", {}, c.patient_code),
                  h("td", {}, c.collected_on ?? "–"),
                  h(
                    "td",
                    {},
                    c.confirmed_diagnosis || "–",
                    c.diagnosis_method ? h("span", { class: "muted small" }, ` (${c.diagnosis_method})`) : null,
                  ),
                  h("td", { class: "num" }, c.smear_count),
                  h(
                    "td",
                    {},
                    h("a", { class: "button", href: `/cases/${c.id}` }, "Report"),
                    " ",
                    h("a", { class: "button", href: `/gallery/case/${c.id}` }, "Gallery"),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "empty" }, "No cases match."),
      page.count > page.results.length
        ? h(
            "p",
            { class: "muted small" },
            `${page.results.length} of ${page.count} cases shown; filter by code to find others.`,
          )
        : "",
    );
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => void load(), 250);
  });
  await load();
  return bindKeys("global", null, {});
};
