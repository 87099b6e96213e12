// Admin: model versions with their metrics and plots, training jobs with live progress, launch / cancel retraining,
// schedules. Each section stands on its own endpoint and says so when the server does not have it yet.

import { describeError, isMissingEndpoint } from "../api/http";
import { FINISHED } from "../api/jobs";
import { metricRows, PROFILES, STAGES, training, type ModelVersion, type TrainingJob } from "../api/training";
import type { Page } from "../context";
import { clear, formatDate, h } from "../ui/dom";
import { showError, showInfo } from "../ui/feedback";
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

function modelCard(model: ModelVersion): HTMLElement {
  const rows = metricRows(model.metrics);
  return h(
    "div",
    { class: `card model ${model.status}`, dataset: { model: String(model.id) } },
    h("h3", {}, `${model.stage} v${model.id} `, h("span", { class: `tag ${model.status}` }, model.status)),
    h(
      "div",
      { class: "small" },
      `${model.architecture} · profile ${model.profile}${model.parent ? ` · from v${model.parent}` : ""}`,
    ),
    h(
      "div",
      { class: "muted small" },
      `created ${formatDate(model.created_at)}${model.promoted_at ? ` · promoted ${formatDate(model.promoted_at)}` : ""}`,
    ),
    model.status_reason ? h("div", { class: "small" }, model.status_reason) : null,
    rows.length
      ? h(
          "table",
          { class: "diff-table" },
          h(
            "tbody",
            {},
            rows.map(([name, value]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, value))),
          ),
        )
      : h("div", { class: "muted small" }, "no metrics recorded"),
    (model.plots ?? []).map((plot) =>
      h(
        "figure",
        {},
        h("img", { class: "plot", src: plot.url, alt: plot.name, loading: "lazy" }),
        h("figcaption", { class: "small muted" }, plot.name),
      ),
    ),
  );
}

export const modelsPage: Page = async (root) => {
  const modelsBox = h("div", { class: "cards", id: "models" }, h("p", { class: "muted" }, "Loading…"));
  const jobsBox = h("div", { id: "training-jobs" });
  const schedulesBox = h("div", { id: "schedules" });
  const stage = h(
    "select",
    { id: "train-stage", "aria-label": "stage" },
    STAGES.map((s) => h("option", { value: s }, s)),
  );
  const profile = h(
    "select",
    { id: "train-profile", "aria-label": "profile" },
    PROFILES.map((p) => h("option", { value: p }, p)),
  );
  const launch = h("button", { class: "primary" }, "Launch retraining");
  root.append(
    h("h1", {}, "Models and training"),
    h("h2", {}, "Training jobs"),
    h("div", { class: "form-row" }, h("label", {}, "Stage", stage), h("label", {}, "Profile", profile), launch),
    jobsBox,
    h("h2", {}, "Model versions"),
    modelsBox,
    h("h2", {}, "Schedules"),
    schedulesBox,
  );

  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const renderJobs = (jobs: TrainingJob[]): void => {
    clear(
      jobsBox,
      jobs.length
        ? jobs.slice(0, 20).map((job) => {
            const running = !FINISHED.has(job.status);
            const cancelButton = running
              ? h(
                  "button",
                  { class: "danger small", onclick: () => void cancel(job.id), disabled: job.cancel_requested },
                  job.cancel_requested ? "cancelling…" : "Cancel",
                )
              : null;
            return jobLine(
              `Job #${job.id}${job.stage ? ` ${job.stage}` : ""}${job.profile ? ` (${job.profile})` : ""}`,
              job,
              cancelButton,
            );
          })
        : h("p", { class: "muted" }, "No training jobs yet."),
    );
    // Live progress: re-read while any job runs.
    if (!stopped && jobs.some((job) => !FINISHED.has(job.status)))
      timer = setTimeout(() => void refreshJobs(), POLL_MS);
  };
  const refreshJobs = (): Promise<boolean> => section(jobsBox, "training jobs", training.jobs, renderJobs);

  async function cancel(id: number): Promise<void> {
    try {
      await training.cancel(id);
      showInfo(`Training job #${id}: cancelling.`);
      clearTimeout(timer);
      await refreshJobs();
    } catch (error) {
      showError(error, "Cancelling the training job");
    }
  }

  launch.addEventListener("click", async () => {
    launch.disabled = true;
    try {
      const chosen = STAGES.find((name) => name === stage.value) ?? STAGES[0];
      const job = await training.launch({ stage: chosen, profile: profile.value });
      showInfo(`Training job #${job.id} queued.`);
      clearTimeout(timer);
      await refreshJobs();
    } catch (error) {
      showError(error, "Launching retraining");
    } finally {
      launch.disabled = false;
    }
  });

  await Promise.all([
    refreshJobs(),
    section(modelsBox, "model registry", training.models, (models) =>
      clear(modelsBox, models.length ? models.map(modelCard) : h("p", { class: "muted" }, "No model versions yet.")),
    ),
    section(schedulesBox, "schedules", training.schedules, (schedules) =>
      clear(
        schedulesBox,
        schedules.length
          ? h(
              "table",
              { class: "grid" },
              h(
                "tbody",
                {},
                schedules.map((s) => {
                  const toggle = h("input", { type: "checkbox", checked: s.enabled, "aria-label": `enable ${s.name}` });
                  toggle.addEventListener("change", async () => {
                    try {
                      await training.setSchedule(s.id, toggle.checked);
                    } catch (error) {
                      toggle.checked = !toggle.checked;
                      showError(error, "Changing the schedule");
                    }
                  });
                  return h(
                    "tr",
                    {},
                    h("td", {}, h("label", {}, toggle, ` ${s.name}`)),
                    h(
                      "td",
                      { class: "muted small" },
                      Object.entries(s)
                        .filter(([k]) => !["id", "name", "enabled"].includes(k))
                        .map(([k, v]) => `${k}: ${String(v)}`)
                        .join(" · "),
                    ),
                  );
                }),
              ),
            )
          : h("p", { class: "muted" }, "No schedules."),
      ),
    ),
  ]);
  const unbind = bindKeys("global", null, {});
  return () => {
    stopped = true;
    clearTimeout(timer);
    unbind();
  };
};
