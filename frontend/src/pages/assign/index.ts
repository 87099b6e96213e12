// Assignment (admin, adjudicator): pick fields (by case, smear, state; select all), give them to two annotators
// chosen by hand or balanced by open workload, see each annotator's open load, take back an unsubmitted field.

import { describeError } from "../../api/http";
import { assignmentAdmin, intakeCases, intakeFields, intakeSmears, type AnnotatorLoad } from "../../api/lab";
import type { Assignment } from "../../api/review";
import type { Case, Field, Smear } from "../../api/shapes";
import type { Page } from "../../context";
import { h, words } from "../../ui/dom";
import { confirmAction, showError, showInfo } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";

const STATES: readonly (readonly [string, string])[] = [
  ["waiting", "waiting for assignment"],
  ["", "any state"],
  ["uploaded", "uploaded"],
  ["prelabelled", "pre-labelled"],
  ["in_annotation", "in annotation"],
  ["in_crosscheck", "in cross-check"],
  ["in_adjudication", "in adjudication"],
  ["consensus", "consensus"],
];

export const assignPage: Page = async (root) => {
  let cases: Case[] = [];
  let smears: Smear[] = [];
  let fields: Field[] = [];
  let assignments: Assignment[] = [];
  let loads: AnnotatorLoad[] = [];
  const selected = new Set<number>();

  const caseFilter = h("select", { id: "assign-case", "aria-label": "case" });
  const smearFilter = h("select", { id: "assign-smear", "aria-label": "smear" });
  const stateFilter = h(
    "select",
    { id: "assign-state", "aria-label": "state" },
    STATES.map(([value, text]) => h("option", { value }, text)),
  );
  const firstAnnotator = h("select", { id: "annotator-a", "aria-label": "first annotator" });
  const secondAnnotator = h("select", { id: "annotator-b", "aria-label": "second annotator" });
  const assignButton = h("button", { id: "assign-chosen", type: "button" }, "Assign to these two");
  const autoButton = h(
    "button",
    { id: "assign-auto", type: "button", class: "primary" },
    "Auto-assign (fewest open first)",
  );
  const selectionLine = h("span", { id: "selection-count", class: "muted" });
  const loadsBox = h("div", { id: "annotator-loads" });
  const table = h("div", { id: "assign-fields" });

  root.append(
    h("h1", {}, "Assignment"),
    h(
      "div",
      { class: "form-row" },
      h("label", {}, "Case ", caseFilter),
      h("label", {}, "Smear ", smearFilter),
      h("label", {}, "State ", stateFilter),
    ),
    h(
      "div",
      { class: "assign-layout" },
      h(
        "section",
        { class: "assign-main" },
        h(
          "div",
          { class: "form-row assign-actions" },
          selectionLine,
          h("label", {}, "A ", firstAnnotator),
          h("label", {}, "B ", secondAnnotator),
          assignButton,
          autoButton,
        ),
        table,
      ),
      h("aside", { class: "card assign-loads" }, h("h2", {}, "Open work per annotator"), loadsBox),
    ),
  );

  const option = (value: number | "", text: string) => h("option", { value: String(value) }, text);

  const drawFilters = (): void => {
    const caseValue = caseFilter.value;
    caseFilter.replaceChildren(option("", "all cases"), ...cases.map((c) => option(c.id, c.code)));
    caseFilter.value = caseValue;
    const smearValue = smearFilter.value;
    const ofCase = smears.filter((s) => !caseFilter.value || s.case === Number(caseFilter.value));
    smearFilter.replaceChildren(
      option("", "all smears"),
      ...ofCase.map((s) => option(s.id, `${s.case_code}/${s.code}`)),
    );
    smearFilter.value = ofCase.some((s) => String(s.id) === smearValue) ? smearValue : "";
  };

  const drawLoads = (): void => {
    const choices = loads.map((l) => option(l.id, `${l.username} (${l.open_assignments} open)`));
    const [a, b] = [firstAnnotator.value, secondAnnotator.value];
    firstAnnotator.replaceChildren(option("", "annotator A…"), ...choices.map((c) => c.cloneNode(true)));
    secondAnnotator.replaceChildren(option("", "annotator B…"), ...choices);
    firstAnnotator.value = a;
    secondAnnotator.value = b;
    loadsBox.replaceChildren(
      loads.length
        ? h(
            "table",
            { class: "grid loads" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Annotator", "Open", "All"].map((t) => h("th", {}, t)),
              ),
            ),
            h(
              "tbody",
              {},
              loads.map((l) =>
                h(
                  "tr",
                  { dataset: { annotator: l.username } },
                  h("td", {}, l.username),
                  h("td", { class: "num open" }, l.open_assignments),
                  h("td", { class: "num" }, l.assignments),
                ),
              ),
            ),
          )
        : h("p", { class: "empty" }, "No active annotators: an admin gives the annotator role on the Users page."),
    );
  };

  const assignmentsOf = (fieldId: number) => assignments.filter((a) => a.field === fieldId);

  const drawTable = (): void => {
    for (const id of [...selected]) if (!fields.some((f) => f.id === id)) selected.delete(id);
    selectionLine.textContent = `${selected.size} of ${fields.length} selected`;
    if (!fields.length) {
      table.replaceChildren(h("p", { class: "empty" }, "No field matches these filters."));
      return;
    }
    const all = h("input", { type: "checkbox", id: "select-all", "aria-label": "select all" });
    all.checked = selected.size === fields.length;
    all.addEventListener("change", () => {
      for (const field of fields) {
        if (all.checked) selected.add(field.id);
        else selected.delete(field.id);
      }
      drawTable();
    });
    table.replaceChildren(
      h(
        "table",
        { class: "grid assign" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, all),
            ...["", "Field", "Case / smear", "State", "Annotators"].map((t) => h("th", {}, t)),
          ),
        ),
        h(
          "tbody",
          {},
          fields.map((field) => {
            const box = h("input", { type: "checkbox", "aria-label": `select field ${field.id}` });
            box.checked = selected.has(field.id);
            box.addEventListener("change", () => {
              if (box.checked) selected.add(field.id);
              else selected.delete(field.id);
              selectionLine.textContent = `${selected.size} of ${fields.length} selected`;
            });
            return h(
              "tr",
              { dataset: { field: String(field.id) } },
              h("td", {}, box),
              h("td", {}, h("img", { class: "thumb-small", src: field.thumbnail_url, alt: "", loading: "lazy" })),
              h("td", {}, `#${field.id}`),
              h("td", {}, `${field.case_code} / ${smears.find((s) => s.id === field.smear)?.code ?? field.smear}`),
              h("td", {}, h("span", { class: `status ${field.status}` }, words(field.status))),
              h("td", { class: "annotators" }, assignmentsOf(field.id).map(assignmentChip)),
            );
          }),
        ),
      ),
    );
  };

  const assignmentChip = (assignment: Assignment): HTMLElement => {
    const open =
      assignment.progress !== "submitted" &&
      !["in_crosscheck", "in_adjudication", "consensus"].includes(assignment.field_status);
    const chip = h(
      "span",
      {
        class: `chip ${assignment.progress}`,
        dataset: { assignment: String(assignment.id), annotator: assignment.annotator_username },
      },
      `${assignment.annotator_username} · ${words(assignment.progress)}`,
    );
    if (open) {
      const back = h("button", { class: "link take-back", type: "button", title: "take the field back" }, "take back");
      back.addEventListener("click", async () => {
        const sure = await confirmAction(
          "Take the field back?",
          `Field #${assignment.field} goes back from ${assignment.annotator_username}; their unsubmitted draft is discarded (kept in the audit trail).`,
          "Take back",
        );
        if (!sure) return;
        try {
          await assignmentAdmin.takeBack(assignment.id);
          showInfo(`Field #${assignment.field} taken back from ${assignment.annotator_username}.`);
          await reload();
        } catch (error) {
          showError(error, "Taking the field back");
        }
      });
      chip.append(" ", back);
    }
    return chip;
  };

  const reload = async (): Promise<void> => {
    const caseId = Number(caseFilter.value) || undefined;
    const smearId = Number(smearFilter.value) || undefined;
    const state = stateFilter.value;
    const query = { case: caseId, smear: smearId, status: state && state !== "waiting" ? state : undefined };
    const [loadedFields, loadedAssignments, loadedLoads] = await Promise.all([
      intakeFields.list(query),
      assignmentAdmin.list({ case: caseId, smear: smearId }),
      assignmentAdmin.loads(),
    ]);
    assignments = loadedAssignments;
    loads = loadedLoads;
    fields =
      state === "waiting"
        ? loadedFields.filter(
            (f) => ["uploaded", "prelabelled", "in_annotation"].includes(f.status) && assignmentsOf(f.id).length < 2,
          )
        : loadedFields;
    drawLoads();
    drawTable();
  };

  const chosenFields = (): number[] | null => {
    if (!selected.size) {
      showError(new Error("Select the fields to assign first (the box in the header selects them all)."));
      return null;
    }
    return [...selected].sort((a, b) => a - b);
  };

  assignButton.addEventListener("click", async () => {
    const ids = chosenFields();
    if (!ids) return;
    const annotators = [Number(firstAnnotator.value), Number(secondAnnotator.value)].filter(Boolean);
    if (annotators.length !== 2 || annotators[0] === annotators[1]) {
      showError(new Error("Choose two different annotators (A and B)."));
      return;
    }
    const refused: string[] = [];
    const refusedFields = new Set<number>();
    let made = 0;
    for (const fieldId of ids) {
      const have = assignmentsOf(fieldId).map((a) => a.annotator);
      for (const annotator of annotators) {
        if (have.includes(annotator)) continue;
        try {
          await assignmentAdmin.create(fieldId, annotator);
          made += 1;
        } catch (error) {
          refused.push(`field #${fieldId}: ${describeError(error)}`);
          refusedFields.add(fieldId);
        }
      }
    }
    // A refused field (changed meanwhile: 409) stays selected with the annotators chosen: the user decides what next.
    selected.clear();
    for (const fieldId of refusedFields) selected.add(fieldId);
    await reload();
    showInfo(`${made} assignment${made === 1 ? "" : "s"} made.`);
    if (refused.length)
      showError(new Error(`Refused (still selected: assign them to others, or leave them):\n${refused.join("\n")}`));
  });

  autoButton.addEventListener("click", async () => {
    const ids = chosenFields();
    if (!ids) return;
    try {
      const result = await assignmentAdmin.auto(ids);
      selected.clear();
      await reload();
      showInfo(`${result.created.length} assignments made by workload.`);
      if (result.skipped.length) {
        showError(
          new Error(`Skipped:\n${result.skipped.map((s) => `${String(s.field)}: ${String(s.reason)}`).join("\n")}`),
        );
      }
    } catch (error) {
      showError(error, "Auto-assigning");
    }
  });

  for (const filter of [caseFilter, smearFilter, stateFilter]) {
    filter.addEventListener("change", () => {
      drawFilters();
      void reload();
    });
  }

  [cases, smears] = await Promise.all([intakeCases.all(), intakeSmears.all()]);
  drawFilters();
  await reload();
  return bindKeys("global", null, {});
};
