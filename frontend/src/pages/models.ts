// Admin: model versions with readable metrics (overall, per class with support, the learning curve per epoch), plots
// full size on click, promote / roll back with a reason; training jobs with live progress that refresh the versions
// when a job ends; launch (stages incl. all, profile, epochs, promote policy); self-supervised pretraining jobs and
// the starting points training may start from; the retrain schedules as forms. Each section stands on its own
// endpoint and says so when the server does not have it yet.

import { describeError, isMissingEndpoint } from "../api/http";
import { FINISHED, type Job } from "../api/jobs";
import {
  PRETRAIN_STAGES,
  PROFILES,
  PROMOTE_MODES,
  STAGES,
  training,
  type ModelVersion,
  type PretrainingJob,
  type Schedule,
  type StartingPoint,
  type TrainingJob,
} from "../api/training";
import type { Page } from "../context";
import { epochRows, noValidation, overallRows, PER_CLASS_COLUMNS, perClassRows } from "../logic/modelMetrics";
import type { Taxonomy } from "../logic/taxonomy";
import { clear, formatDate, h } from "../ui/dom";
import { dialog, showError, showInfo } from "../ui/feedback";
import { clearProblems, showProblems } from "../ui/forms";
import { jobLine } from "../ui/jobs";
import { bindKeys } from "../ui/keys";

const POLL_MS = 2000;

async function section<T>(
  target: HTMLElement,
  what: string,
  load: () => Promise<T>,
  render: (value: T) => void,
): Promise<boolean> {
  try {
    render(await load());
    return true;
  } catch (error) {
    if (isMissingEndpoint(error))
      clear(
        target,
        h(
          "p",
          { class: "unavailable" },
          `The ${what} API is not available on this server yet (it arrives with the training issue).`,
        ),
      );
    else clear(target, h("p", { class: "form-error" }, describeError(error)));
    return false;
  }
}

function table(head: string[], rows: Array<Array<string | number>>, className = "grid metrics"): HTMLElement {
  return h(
    "table",
    { class: className },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((name) => h("th", {}, name)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          row.map((cell, index) => h("td", { class: index ? "num" : "" }, cell)),
        ),
      ),
    ),
  );
}

function showPlot(url: string, name: string): void {
  void dialog(
    name,
    h("img", { class: "plot-full", src: url, alt: name }),
    [{ label: "Close", value: "close" }],
    "wide",
  );
}

/** Ask for the reason of a promotion or rollback; "" when the admin cancels. */
async function askReason(title: string): Promise<string> {
  const input = h("input", { type: "text", id: "registry-reason", "aria-label": "reason", size: 50 });
  const body = h("label", {}, "Reason (kept in the audit trail) ", input);
  setTimeout(() => input.focus(), 0);
  const pressed = await dialog(title, body, [
    { label: "Cancel", value: "" },
    { label: "Confirm", value: "ok", primary: true },
  ]);
  return pressed === "ok" ? input.value.trim() : "";
}

/** Which weights each model of the version started from (ensemble members in the architecture's order). */
function startingPointsText(model: ModelVersion): string {
  const points = model.starting_points;
  if (!points.some((point) => point !== null)) return "Trained from random init.";
  const parts = model.architecture.split("+").map((arch, index) => {
    const point = points[index] ?? null;
    return `${arch}: ${point ? `starting point ${point.name} (sha256 ${point.sha256.slice(0, 12)})` : "random init"}`;
  });
  return `Started from ${parts.join("; ")}.`;
}

function modelCard(model: ModelVersion, taxonomy: Taxonomy, act: (what: "promote" | "rollback") => void): HTMLElement {
  const overall = overallRows(model.metrics);
  const perClass = perClassRows(model.metrics, (id) => taxonomy.name(id));
  const epochs = epochRows(model.history);
  const main =
    typeof (model.gate as { metric?: unknown })?.metric === "string" ? (model.gate as { metric: string }).metric : "";
  return h(
    "div",
    { class: `card model ${model.status}`, dataset: { model: String(model.id) } },
    h("h3", {}, `${model.stage} v${model.id} `, h("span", { class: `tag ${model.status}` }, model.status)),
    h(
      "div",
      { class: "small" },
      `${model.architecture} · profile ${model.profile}${model.parent ? ` · from v${model.parent}` : ""}`,
    ),
    h("div", { class: "muted small starting-points" }, startingPointsText(model)),
    h(
      "div",
      { class: "muted small" },
      `Created ${formatDate(model.created_at)}${model.promoted_at ? `, promoted ${formatDate(model.promoted_at)}` : ""}.`,
    ),
    model.status_reason ? h("p", { class: "small" }, model.status_reason) : null,
    h(
      "div",
      { class: "registry-actions" },
      model.status === "active"
        ? h("button", { class: "danger small rollback", onclick: () => act("rollback") }, "Roll back")
        : h("button", { class: "small promote", onclick: () => act("promote") }, "Promote"),
    ),
    h("h4", {}, "Test metrics"),
    overall.length
      ? table(
          ["metric", "value"],
          overall.map(([name, value]) => [name, value]),
        )
      : h("p", { class: "muted small" }, "No metrics were recorded for this version."),
    perClass.length
      ? h(
          "details",
          { class: "per-class" },
          h("summary", {}, `Per class (${perClass.length})`),
          table(
            ["class", ...PER_CLASS_COLUMNS],
            perClass.map((row) => [row.name, ...row.values]),
          ),
        )
      : null,
    epochs.length
      ? h(
          "details",
          { class: "learning-curve" },
          h("summary", {}, `Learning curve (${epochs.length} epochs)`),
          noValidation(epochs)
            ? h(
                "p",
                { class: "small" },
                "No epoch was validated: the training snapshot had no field of a patient in the val split, so the " +
                  "best epoch is the last one.",
              )
            : null,
          table(
            ["epoch", "member", "train loss", `val ${main || "metric"}`],
            epochs.map((row) => [row.epoch, row.member, row.trainLoss, row.val]),
          ),
        )
      : null,
    h(
      "div",
      { class: "plots" },
      (model.plots ?? []).map((plot) =>
        h(
          "figure",
          {},
          h("img", {
            class: "plot",
            src: plot.url,
            alt: plot.name,
            loading: "lazy",
            title: "Click for full size",
            onclick: () => showPlot(plot.url, plot.name),
          }),
          h("figcaption", { class: "small muted" }, plot.name),
        ),
      ),
    ),
  );
}

function select(id: string, label: string, values: readonly string[], chosen?: string): HTMLSelectElement {
  return h(
    "select",
    { id, "aria-label": label },
    values.map((v) => h("option", { value: v, selected: v === chosen }, v)),
  );
}

function scheduleForm(s: Schedule): HTMLElement {
  const input = (name: keyof Schedule, attributes: Record<string, string | number> = {}) =>
    h("input", { name, value: String(s[name] ?? ""), size: 6, ...attributes });
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: Boolean(s.enabled) });
  const fields: Array<[string, HTMLElement]> = [
    ["min new cells", input("min_new_cells", { type: "number", min: 0 })],
    ["minute", input("minute")],
    ["hour", input("hour")],
    ["day of week", input("day_of_week")],
    ["day of month", input("day_of_month")],
    ["month", input("month_of_year")],
    ["epochs", input("epochs", { type: "number", min: 1, placeholder: "profile's" })],
  ];
  const profile = select(`schedule-${s.id}-profile`, "profile", PROFILES, s.profile);
  profile.name = "profile";
  const promote = select(`schedule-${s.id}-promote`, "promote", PROMOTE_MODES, s.promote);
  promote.name = "promote";
  const stages = h(
    "fieldset",
    { class: "checks", dataset: { field: "stages" } },
    h("legend", {}, "stages"),
    STAGES.map((stage) =>
      h(
        "label",
        {},
        h("input", { type: "checkbox", name: "stages", value: stage, checked: (s.stages ?? []).includes(stage) }),
        ` ${stage}`,
      ),
    ),
  );
  const save = h("button", { class: "primary small", type: "submit" }, "Save schedule");
  const form = h(
    "form",
    { class: "card schedule-form", dataset: { schedule: String(s.id) } },
    h("h3", {}, s.name),
    h("label", { dataset: { field: "enabled" } }, enabled, " enabled"),
    h(
      "div",
      { class: "form-row" },
      fields.map(([label, control]) =>
        h("label", { dataset: { field: control.getAttribute("name") ?? "" } }, `${label} `, control),
      ),
      h("label", { dataset: { field: "profile" } }, "profile ", profile),
      h("label", { dataset: { field: "promote" } }, "promote ", promote),
    ),
    stages,
    h(
      "p",
      { class: "muted small" },
      `${s.new_cells} new truth cells since the last run. ${s.last_check ? `Last check: ${s.last_check}` : "Not checked yet."}`,
    ),
    save,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const value = (name: string) => (form.querySelector(`[name="${name}"]`) as HTMLInputElement).value;
    const epochs = value("epochs");
    save.disabled = true;
    try {
      await training.updateSchedule(s.id, {
        enabled: enabled.checked,
        min_new_cells: Number(value("min_new_cells")),
        minute: value("minute"),
        hour: value("hour"),
        day_of_week: value("day_of_week"),
        day_of_month: value("day_of_month"),
        month_of_year: value("month_of_year"),
        epochs: epochs ? Number(epochs) : null,
        profile: profile.value,
        promote: promote.value as Schedule["promote"],
        stages: [...form.querySelectorAll<HTMLInputElement>("input[name=stages]:checked")].map(
          (i) => i.value as (typeof STAGES)[number],
        ),
      });
      showInfo(`Schedule ${s.name} saved.`);
    } catch (error) {
      if (!showProblems(form, error)) showError(error, "Saving the schedule");
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

/**
 * A box of jobs of one kind with live progress: re-read every POLL_MS while one runs; `onEnded` when a job that ran
 * has ended since the last look (its results, versions or starting points, are new). Returns the refresh and a stop.
 */
function jobList<T extends Job>(options: {
  box: HTMLElement;
  what: string;
  load: () => Promise<T[]>;
  label: (job: T) => string;
  cancel: (id: number) => Promise<unknown>;
  onEnded: () => void;
}): { refresh: () => Promise<boolean>; stop: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let running = new Set<number>();
  const cancel = async (id: number): Promise<void> => {
    try {
      await options.cancel(id);
      showInfo(`${options.what} #${id}: cancelling.`);
      await refresh();
    } catch (error) {
      showError(error, `Cancelling ${options.what} #${id}`);
    }
  };
  const render = (jobs: T[]): void => {
    clear(
      options.box,
      jobs.length
        ? jobs.slice(0, 20).map((job) => {
            const open = !FINISHED.has(job.status);
            const cancelButton = open
              ? h(
                  "button",
                  { class: "danger small", onclick: () => void cancel(job.id), disabled: job.cancel_requested },
                  job.cancel_requested ? "cancelling…" : "Cancel",
                )
              : null;
            return jobLine(options.label(job), job, cancelButton);
          })
        : h("p", { class: "muted" }, `No ${options.what}s yet.`),
    );
    const now = new Set(jobs.filter((job) => !FINISHED.has(job.status)).map((job) => job.id));
    if ([...running].some((id) => !now.has(id))) options.onEnded();
    running = now;
    if (!stopped && now.size) timer = setTimeout(() => void refresh(), POLL_MS);
  };
  const refresh = (): Promise<boolean> => {
    clearTimeout(timer);
    return section(options.box, `${options.what}s`, options.load, render);
  };
  return {
    refresh,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function startingPointsTable(points: StartingPoint[]): HTMLElement {
  if (!points.length)
    return h("p", { class: "muted" }, "No starting points yet: every network trains from random init.");
  return table(
    ["name", "architecture", "kind", "source", "sha256", "registered"],
    points.map((point) => [
      point.name,
      point.arch,
      point.kind === "self_supervised" ? "self-supervised" : "imported",
      point.source,
      point.sha256.slice(0, 12),
      formatDate(point.created_at),
    ]),
    "grid starting-points",
  );
}

function pretrainForm(onQueued: (job: PretrainingJob) => Promise<unknown>): HTMLFormElement {
  const stage = select("pretrain-stage", "pretraining stage", PRETRAIN_STAGES, "classifier");
  const profile = select("pretrain-profile", "pretraining profile", PROFILES);
  const epochs = h("input", { type: "number", min: 1, id: "pretrain-epochs", value: 20, size: 6 });
  const name = h("input", { type: "text", id: "pretrain-name", placeholder: "automatic", size: 20 });
  const excluded = h(
    "fieldset",
    { class: "checks", dataset: { field: "exclude_splits" } },
    h("legend", {}, "leave out the fields of"),
    (["val", "test"] as const).map((split) =>
      h(
        "label",
        {},
        h("input", { type: "checkbox", name: "exclude_splits", value: split, checked: split === "test" }),
        ` ${split} patients`,
      ),
    ),
  );
  const start = h("button", { class: "primary", type: "submit" }, "Start pretraining");
  const form = h(
    "form",
    { class: "form-row pretrain-form" },
    h("label", { dataset: { field: "stage" } }, "Stage ", stage),
    h("label", { dataset: { field: "profile" } }, "Profile ", profile),
    h("label", { dataset: { field: "epochs" } }, "Epochs ", epochs),
    h("label", { dataset: { field: "name" } }, "Name ", name),
    excluded,
    start,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    clearProblems(form);
    try {
      const job = await training.pretrain({
        stage: stage.value as (typeof PRETRAIN_STAGES)[number],
        profile: profile.value,
        epochs: Number(epochs.value),
        ...(name.value.trim() ? { name: name.value.trim() } : {}),
        exclude_splits: [...form.querySelectorAll<HTMLInputElement>("input[name=exclude_splits]:checked")].map(
          (input) => input.value as "val" | "test",
        ),
      });
      showInfo(`Pretraining job #${job.id} queued: ${job.name}.`);
      await onQueued(job);
    } catch (error) {
      if (!showProblems(form, error)) showError(error, "Starting pretraining");
    } finally {
      start.disabled = false;
    }
  });
  return form;
}

export const modelsPage: Page = async (root, _params, context) => {
  const taxonomy = await context.taxonomy();
  const modelsBox = h("div", { class: "cards", id: "models" }, h("p", { class: "muted" }, "Loading…"));
  const jobsBox = h("div", { id: "training-jobs" });
  const schedulesBox = h("div", { id: "schedules" });
  const pretrainingBox = h("div", { id: "pretraining-jobs" });
  const startingPointsBox = h("div", { id: "starting-points" });
  const stage = select("train-stage", "stages", ["all", ...STAGES], "all");
  const profile = select("train-profile", "profile", PROFILES);
  const promote = select("train-promote", "promote policy", PROMOTE_MODES, "auto");
  const epochs = h("input", { type: "number", min: 1, id: "train-epochs", placeholder: "profile's", size: 6 });
  const launch = h("button", { class: "primary", type: "submit" }, "Launch retraining");
  const launchForm = h(
    "form",
    { class: "form-row launch-form" },
    h("label", { dataset: { field: "stage" } }, "Stages ", stage),
    h("label", { dataset: { field: "profile" } }, "Profile ", profile),
    h("label", { dataset: { field: "epochs" } }, "Epochs ", epochs),
    h("label", { dataset: { field: "promote" } }, "Promote ", promote),
    launch,
  );
  root.append(
    h("h1", {}, "Models and training"),
    h("h2", {}, "Training jobs"),
    launchForm,
    jobsBox,
    h("h2", {}, "Model versions"),
    modelsBox,
    h("h2", {}, "Starting points and self-supervised pretraining"),
    h(
      "p",
      { class: "muted small" },
      "Pretraining learns starting weights for a stage's networks from every stored field and cell, labelled or " +
        "not, without the internet. A profile names a starting point per model (",
      h("code", {}, "init: starting-point:<name>"),
      "). Weight files brought on a disk are registered on a training host with ",
      h("code", {}, "python manage.py import_weights FILE --arch ARCH --name NAME"),
      " and listed here.",
    ),
    pretrainingBox,
    startingPointsBox,
    h("h2", {}, "Retrain schedules"),
    schedulesBox,
  );

  const refreshModels = (): Promise<boolean> =>
    section(modelsBox, "model registry", training.models, (models) =>
      clear(
        modelsBox,
        models.length
          ? models.map((m) => modelCard(m, taxonomy, (what) => void registryAction(m, what)))
          : h("p", { class: "muted" }, "No model versions yet."),
      ),
    );

  async function registryAction(model: ModelVersion, what: "promote" | "rollback"): Promise<void> {
    const title = what === "promote" ? `Promote ${model.stage} v${model.id}` : `Roll back ${model.stage} v${model.id}`;
    const reason = await askReason(title);
    if (!reason) return;
    try {
      await (what === "promote" ? training.promote(model.id, reason) : training.rollback(model.id, reason));
      showInfo(
        what === "promote"
          ? `${model.stage} v${model.id} is now active.`
          : `${model.stage} v${model.id} was rolled back.`,
      );
      await refreshModels();
    } catch (error) {
      showError(error, title);
    }
  }

  const trainingJobs = jobList<TrainingJob>({
    box: jobsBox,
    what: "training job",
    load: training.jobs,
    label: (job) => `Job #${job.id}${job.stage ? ` ${job.stage}` : ""}${job.profile ? ` (${job.profile})` : ""}`,
    cancel: training.cancel,
    onEnded: () => void refreshModels(),
  });
  const refreshStartingPoints = (): Promise<boolean> =>
    section(startingPointsBox, "starting points", training.startingPoints, (points) =>
      clear(startingPointsBox, startingPointsTable(points)),
    );
  const pretrainingJobs = jobList<PretrainingJob>({
    box: pretrainingBox,
    what: "pretraining job",
    load: training.pretrainingJobs,
    label: (job) => `Pretraining #${job.id} ${job.stage} (${job.profile}) as ${job.name}`,
    cancel: training.cancelPretraining,
    onEnded: () => void refreshStartingPoints(),
  });
  pretrainingBox.before(pretrainForm(() => pretrainingJobs.refresh()));

  launchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    launch.disabled = true;
    clearProblems(launchForm);
    try {
      const chosen = ["all", ...STAGES].find((name) => name === stage.value) ?? "all";
      const job = await training.launch({
        stage: chosen as (typeof STAGES)[number],
        profile: profile.value,
        epochs: epochs.value ? Number(epochs.value) : null,
        promote: promote.value as (typeof PROMOTE_MODES)[number],
      });
      showInfo(`Training job #${job.id} queued.`);
      await trainingJobs.refresh();
    } catch (error) {
      if (!showProblems(launchForm, error)) showError(error, "Launching retraining");
    } finally {
      launch.disabled = false;
    }
  });

  await Promise.all([
    trainingJobs.refresh(),
    refreshModels(),
    pretrainingJobs.refresh(),
    refreshStartingPoints(),
    section(schedulesBox, "schedules", training.schedules, (schedules) =>
      clear(schedulesBox, schedules.length ? schedules.map(scheduleForm) : h("p", { class: "muted" }, "No schedules.")),
    ),
  ]);
  const unbind = bindKeys("global", null, {});
  return () => {
    trainingJobs.stop();
    pretrainingJobs.stop();
    unbind();
  };
};
