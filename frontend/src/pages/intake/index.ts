// Intake (admin): patient -> case -> smear, each picked or created here, then field images dropped onto the smear.
// Every file goes up in its own request with its progress; the server stores it whole or refuses it with reasons
// (too large, not an image, already stored as field N), so a batch with bad files stores all the good ones.

import { ApiError, describeError, type FieldProblem } from "../../api/http";
import {
  intakeCases,
  intakeFields,
  intakeSmears,
  patients,
  uploadField,
  type Diagnosis,
  type Patient,
} from "../../api/lab";
import type { Case, Field, Smear } from "../../api/shapes";
import type { Page } from "../../context";
import { h, words } from "../../ui/dom";
import { showError } from "../../ui/feedback";
import { formValues, labelled, select, showProblems } from "../../ui/forms";
import { bindKeys } from "../../ui/keys";

const DIAGNOSES: readonly (readonly [Diagnosis | "", string])[] = [
  ["", "not confirmed yet"],
  ["ALL", "ALL"],
  ["AML", "AML"],
  ["LYMPHOMA", "Lymphoma infiltration"],
  ["NEUROBLASTOMA", "Neuroblastoma metastasis"],
  ["NONE", "No malignancy"],
  ["OTHER", "Other"],
];
const SEXES = [
  ["", "not given"],
  ["F", "female"],
  ["M", "male"],
  ["X", "other"],
] as const;
const PARALLEL_UPLOADS = 2;

interface Selection {
  patient: number | null;
  case: number | null;
  smear: number | null;
}

export const intakePage: Page = async (root) => {
  const chosen: Selection = { patient: null, case: null, smear: null };
  let allPatients: Patient[] = [];
  let allCases: Case[] = [];
  let allSmears: Smear[] = [];

  const patientPick = h("select", { id: "patient-pick", "aria-label": "patient" });
  const casePick = h("select", { id: "case-pick", "aria-label": "case" });
  const smearPick = h("select", { id: "smear-pick", "aria-label": "smear" });

  const patientForm = h(
    "form",
    { id: "patient-form", class: "intake-form", novalidate: true },
    labelled(
      "Pseudonymous code",
      h("input", { name: "code", id: "patient-code" }),
      "letters, digits, . _ - (no names)",
    ),
    labelled("Birth year", h("input", { name: "birth_year", id: "patient-birth-year", inputmode: "numeric" })),
    labelled("Sex", select("sex", SEXES)),
    h("button", { type: "submit" }, "Create patient"),
  );
  const caseForm = h(
    "form",
    { id: "case-form", class: "intake-form", novalidate: true },
    labelled("Case code", h("input", { name: "code", id: "case-code" })),
    labelled("Collected on", h("input", { name: "collected_on", id: "case-collected", type: "date" })),
    labelled("Confirmed diagnosis", select("confirmed_diagnosis", DIAGNOSES)),
    labelled("Confirmed by", h("input", { name: "diagnosis_method", placeholder: "e.g. flow cytometry" })),
    h("button", { type: "submit" }, "Create case"),
  );
  const smearForm = h(
    "form",
    { id: "smear-form", class: "intake-form", novalidate: true },
    labelled("Smear code", h("input", { name: "code", id: "smear-code" })),
    labelled("Stain", h("input", { name: "stain", id: "smear-stain", value: "Wright-Giemsa" })),
    labelled("Prepared on", h("input", { name: "prepared_on", id: "smear-date", type: "date" })),
    labelled("Microscope", h("input", { name: "microscope" })),
    h("button", { type: "submit" }, "Create smear"),
  );

  const fileInput = h("input", { type: "file", id: "field-files", multiple: true, accept: "image/*" });
  const dropzone = h(
    "label",
    { id: "dropzone", class: "dropzone" },
    "Drop field images here, or click to choose files (JPEG, PNG, TIFF)",
    fileInput,
  );
  const uploadSummary = h("p", { id: "upload-summary", class: "muted" });
  const uploadList = h("ul", { id: "upload-list", class: "upload-list" });
  const fieldList = h("div", { id: "field-list" });
  const fieldsSection = h(
    "section",
    { class: "card intake-step", id: "intake-fields" },
    h("h2", {}, "4. Fields"),
    dropzone,
    uploadSummary,
    uploadList,
    fieldList,
  );

  root.append(
    h("h1", {}, "Intake"),
    h(
      "div",
      { class: "intake" },
      h(
        "section",
        { class: "card intake-step" },
        h("h2", {}, "1. Patient"),
        patientPick,
        h("h3", {}, "New patient"),
        patientForm,
      ),
      h("section", { class: "card intake-step" }, h("h2", {}, "2. Case"), casePick, h("h3", {}, "New case"), caseForm),
      h(
        "section",
        { class: "card intake-step" },
        h("h2", {}, "3. Smear"),
        smearPick,
        h("h3", {}, "New smear"),
        smearForm,
      ),
    ),
    fieldsSection,
  );

  const option = (value: number | "", text: string) => h("option", { value: String(value) }, text);

  const draw = (): void => {
    patientPick.replaceChildren(option("", "choose a patient…"), ...allPatients.map((p) => option(p.id, p.code)));
    patientPick.value = chosen.patient ? String(chosen.patient) : "";
    const cases = allCases.filter((c) => c.patient === chosen.patient);
    casePick.replaceChildren(
      option("", chosen.patient ? "choose a case…" : "choose a patient first"),
      ...cases.map((c) => option(c.id, c.code)),
    );
    casePick.value = chosen.case ? String(chosen.case) : "";
    const smears = allSmears.filter((s) => s.case === chosen.case);
    smearPick.replaceChildren(
      option("", chosen.case ? "choose a smear…" : "choose a case first"),
      ...smears.map((s) => option(s.id, `${s.code} (${s.stain})`)),
    );
    smearPick.value = chosen.smear ? String(chosen.smear) : "";
    caseForm.querySelector("button")!.disabled = !chosen.patient;
    smearForm.querySelector("button")!.disabled = !chosen.case;
    fileInput.disabled = !chosen.smear;
    dropzone.classList.toggle("disabled", !chosen.smear);
  };

  const loadAll = async (): Promise<void> => {
    [allPatients, allCases, allSmears] = await Promise.all([patients.all(), intakeCases.all(), intakeSmears.all()]);
    draw();
  };

  const drawFields = async (): Promise<void> => {
    if (!chosen.smear) {
      fieldList.replaceChildren(h("p", { class: "empty" }, "Choose a smear to see its fields."));
      return;
    }
    const fields = await intakeFields.list({ smear: chosen.smear });
    fieldList.replaceChildren(
      h("h3", {}, `${fields.length} field${fields.length === 1 ? "" : "s"} on this smear`),
      fields.length
        ? h("div", { class: "thumb-grid" }, fields.map(fieldCard))
        : h("p", { class: "empty" }, "No fields yet: drop images above."),
    );
  };

  patientPick.addEventListener("change", () => {
    chosen.patient = Number(patientPick.value) || null;
    chosen.case = chosen.smear = null;
    draw();
    void drawFields();
  });
  casePick.addEventListener("change", () => {
    chosen.case = Number(casePick.value) || null;
    chosen.smear = null;
    draw();
    void drawFields();
  });
  smearPick.addEventListener("change", () => {
    chosen.smear = Number(smearPick.value) || null;
    draw();
    void drawFields();
  });

  const submitter =
    (
      form: HTMLFormElement,
      create: (values: Record<string, string>) => Promise<{ id: number }>,
      after: (id: number) => void,
    ) =>
    async (event: Event): Promise<void> => {
      event.preventDefault();
      try {
        const created = await create(formValues(form));
        form.reset();
        after(created.id);
        await loadAll();
        await drawFields();
      } catch (error) {
        if (!showProblems(form, error)) showError(error);
      }
    };

  patientForm.addEventListener(
    "submit",
    submitter(
      patientForm,
      (v) =>
        patients.create({
          code: v.code ?? "",
          // Sent as typed: the server says next to the field when it is not a year.
          birth_year: (v.birth_year ?? null) as unknown as number | null,
          sex: (v.sex ?? "") as Patient["sex"],
        }),
      (id) => {
        chosen.patient = id;
        chosen.case = chosen.smear = null;
      },
    ),
  );
  caseForm.addEventListener(
    "submit",
    submitter(
      caseForm,
      (v) =>
        intakeCases.create({
          patient: chosen.patient ?? 0,
          code: v.code ?? "",
          collected_on: v.collected_on ?? null,
          confirmed_diagnosis: (v.confirmed_diagnosis ?? "") as Diagnosis,
          diagnosis_method: v.diagnosis_method ?? "",
        }),
      (id) => {
        chosen.case = id;
        chosen.smear = null;
      },
    ),
  );
  smearForm.addEventListener(
    "submit",
    submitter(
      smearForm,
      (v) =>
        intakeSmears.create({
          case: chosen.case ?? 0,
          code: v.code ?? "",
          stain: v.stain ?? "",
          prepared_on: v.prepared_on ?? null,
          microscope: v.microscope ?? "",
        }),
      (id) => {
        chosen.smear = id;
      },
    ),
  );

  const upload = async (files: File[]): Promise<void> => {
    const smearId = chosen.smear;
    if (!smearId || !files.length) return;
    let stored = 0;
    let refused = 0;
    const rows = files.map((file) => {
      const bar = h("progress", { max: 1, value: 0, "aria-label": `upload of ${file.name}` });
      const state = h("span", { class: "upload-state" }, "waiting");
      const row = h(
        "li",
        { class: "upload waiting", dataset: { name: file.name } },
        h("span", { class: "name" }, file.name),
        bar,
        state,
      );
      uploadList.append(row);
      return { file, bar, state, row };
    });
    const summarise = () => {
      uploadSummary.textContent = `${stored} stored, ${refused} refused, ${files.length - stored - refused} to go`;
    };
    summarise();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const item = rows[next];
        next += 1;
        item.row.className = "upload sending";
        item.state.textContent = "sending";
        try {
          const field = await uploadField(smearId, item.file, (fraction) => (item.bar.value = fraction));
          stored += 1;
          item.bar.value = 1;
          item.row.className = "upload stored";
          item.state.textContent = `stored as field ${field.id}`;
        } catch (error) {
          refused += 1;
          item.row.className = "upload refused";
          item.state.textContent = refusalWords(error);
        }
        summarise();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, worker));
    await drawFields();
  };

  fileInput.addEventListener("change", () => {
    const files = [...(fileInput.files ?? [])];
    fileInput.value = "";
    void upload(files);
  });
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    if (!chosen.smear) {
      showError(new Error("Choose or create a smear first; the fields go onto it."));
      return;
    }
    void upload([...(event.dataTransfer?.files ?? [])]);
  });

  await loadAll();
  await drawFields();
  return bindKeys("global", null, {});
};

/** The server's reason for one refused file ("files[0] (x.txt): not an image" -> "not an image"). */
function refusalWords(error: unknown): string {
  if (error instanceof ApiError && error.problems.length) {
    return error.problems.map((problem: FieldProblem) => problem.reason).join("; ");
  }
  return describeError(error);
}

function fieldCard(field: Field): HTMLElement {
  return h(
    "figure",
    { class: "thumb", dataset: { field: String(field.id), status: field.status } },
    h("img", { src: field.thumbnail_url, alt: `field ${field.id}`, loading: "lazy" }),
    h(
      "figcaption",
      {},
      `#${field.id} `,
      h("span", { class: `status ${field.status}` }, words(field.status)),
      h("span", { class: "muted small" }, ` ${field.width}×${field.height}`),
    ),
  );
}
