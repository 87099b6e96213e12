"""UI benchmark: the machine's Chromium (Playwright, headless) against gunicorn over a seeded database; the time
from a key press to the next field or cell rendered, per page, and the first paint of a large cell gallery.

    python -m benchmarks.ui --json                                          # 10,000 fields, 300,000 cells
    python -m benchmarks.ui --fields 40 --cells 1200 --gallery-cells 100    # a quick run
    python -m benchmarks.ui --database-url sqlite:////tmp/ui.sqlite3        # seed once, reuse the file next time

The database is seeded by benchmarks/seed.py (as for the load benchmark: every field assigned to two annotators,
each with a draft set), on `<DATABASE_URL>_ui` with PostgreSQL configured (dropped at the end unless `--keep`),
else a temporary SQLite file, or the explicit `--database-url` (kept; a second run finds the seed there). On top of
it, once: a few fields of the first two annotators submitted with disagreeing classes (so the cross-check has
conflicts), and a case whose consensus holds `--gallery-cells` cells (the gallery's large case).

Measured, as annotator `load-annotator-0` logged in through the login page:
- annotator: `j` (next cell: its label is revealed) and `]` (next field: the new field's image is open);
- gallery (consensus of the large case): ArrowRight (next crop focused) and `]` (first crop of the next class);
- cross-check: `j` (next conflict shown) and `]` (next field with conflicts shown);
- the gallery's first paint: from the start of navigation to its first crops in the page.

A press's time runs from the key event's own time stamp to the paint of the first frame that shows the change,
read in the page, so Playwright's round trips are not counted. Goal: p95 <= 150 ms per page, first paint <= 1 s.
Chromium, gunicorn and the database share the machine: on a small, busy machine the figures are a ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import load

GOAL_P95_MS = 150.0
GOAL_FIRST_PAINT_MS = 1000.0
GALLERY_CASE = "UIBENCH-GALLERY"
CELLS_PER_GALLERY_FIELD = 25
CROSSCHECK_FIELDS = 4
CONFLICTS_PER_FIELD = 3
USERNAME = "load-annotator-0"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TIMEOUT_MS = 60_000
SETTLE_MS = 300_000

# Remember each key press's own time stamp (the capture listener on window runs after the page's, which stops the
# event's propagation but not the other listeners of the same target).
RECORD_KEYS = "() => window.addEventListener('keydown', (e) => { window.__keyAt = e.timeStamp; }, true)"


# --- the fixtures on top of the load seed (run in a child process with Django set up) -------------------------------


def make_fixtures(*, gallery_cells: int, password: str) -> dict[str, Any]:
    """The benchmark's own rows, made once per database: conflicts for the cross-check and the gallery's case."""
    from django.contrib.auth.models import User

    user = User.objects.get(username=USERNAME)
    user.set_password(password)
    user.save(update_fields=["password"])
    return {
        "crosscheck_fields": crosscheck_fields(user),
        "gallery_case": gallery_case(gallery_cells),
        "annotator_fields": annotator_fields(user),
    }


def crosscheck_fields(user: Any) -> list[int]:
    """Fields of `user` and their partner submitted by both, the partner disagreeing on a few classes."""
    from annotations.models import (
        AnnotationKind,
        AnnotationSet,
        AnnotationStatus,
        Assignment,
        Cell,
        CellClass,
        Conflict,
    )
    from annotations.services import annotation_set_submit

    done = list(Conflict.objects.filter(field__assignments__annotator=user).values_list("field_id", flat=True))
    if done:
        return sorted(set(done))
    classes = list(CellClass.objects.order_by("id").values_list("id", flat=True))
    shared = (
        Assignment.objects.filter(annotator=user, slot=1, field__assignments__slot=2)
        .order_by("field_id")
        .values_list("field_id", flat=True)
    )
    chosen = list(shared[:CROSSCHECK_FIELDS])
    for field_id in chosen:
        sets = list(AnnotationSet.objects.filter(field_id=field_id, kind=AnnotationKind.ANNOTATOR).order_by("id"))
        partner = next(s for s in sets if s.annotator_id != user.pk)
        for cell in Cell.objects.filter(annotation_set=partner).order_by("id")[:CONFLICTS_PER_FIELD]:
            other = classes[(classes.index(cell.cell_class_id or classes[0]) + 1) % len(classes)]
            Cell.objects.filter(pk=cell.pk).update(cell_class_id=other)
        for annotation_set in sets:
            if annotation_set.status == AnnotationStatus.DRAFT:
                annotation_set_submit(
                    annotation_set_id=annotation_set.pk,
                    expected_version=annotation_set.version,
                    actor=annotation_set.annotator,
                )
    return chosen


def annotator_fields(user: Any) -> list[int]:
    """`user`'s fields still in draft, in order (the annotator's measured fields)."""
    from annotations.models import AnnotationKind, AnnotationSet, AnnotationStatus

    drafts = AnnotationSet.objects.filter(annotator=user, kind=AnnotationKind.ANNOTATOR, status=AnnotationStatus.DRAFT)
    return list(drafts.order_by("field_id").values_list("field_id", flat=True)[:5])


def gallery_case(cells: int) -> int:
    """A case of its own whose locked consensus holds `cells` cells, CELLS_PER_GALLERY_FIELD per field."""
    from django.db import transaction

    from annotations.models import (
        AnnotationKind,
        AnnotationSet,
        AnnotationStatus,
        Case,
        Cell,
        CellClass,
        Field,
        FieldStatus,
        Patient,
        Smear,
    )

    code = f"{GALLERY_CASE}-{cells}"
    existing = Case.objects.filter(code=code).values_list("id", flat=True).first()
    if existing is not None:
        return int(existing)
    template = Field.objects.order_by("id").first()
    assert template is not None, "the load seed holds no field"
    classes = list(CellClass.objects.order_by("id").values_list("id", flat=True))
    with transaction.atomic():
        case = Case.objects.create(patient=Patient.objects.create(code=f"{code}-P"), code=code)
        smear = Smear.objects.create(case=case, code="S1")
        fields = Field.objects.bulk_create(
            Field(
                smear=smear,
                image=template.image.name,
                thumbnail=template.thumbnail.name,
                width=template.width,
                height=template.height,
                sha256=secrets.token_hex(32),
                format=template.format,
                byte_size=template.byte_size,
                original_name=f"gallery-{i}.jpg",
                status=FieldStatus.CONSENSUS,
            )
            for i in range(-(-cells // CELLS_PER_GALLERY_FIELD))
        )
        sets = AnnotationSet.objects.bulk_create(
            AnnotationSet(field=field, kind=AnnotationKind.CONSENSUS, status=AnnotationStatus.LOCKED)
            for field in fields
        )
        Cell.objects.bulk_create(
            Cell(
                annotation_set=sets[n // CELLS_PER_GALLERY_FIELD],
                x=float((37 * n) % (template.width - 60)),
                y=float((53 * n) % (template.height - 60)),
                width=50.0,
                height=45.0,
                countable=n % 17 != 0,
                cell_class_id=classes[n % len(classes)],
                confidence=(n % 100) / 100,
            )
            for n in range(cells)
        )
    return int(case.pk)


def fixtures_main(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicell.settings")
    import django

    django.setup()
    print(json.dumps(make_fixtures(gallery_cells=args.gallery_cells, password=args.password)))
    return 0


# --- the browser ------------------------------------------------------------------------------------------------------


def painted(page: Any, shows: str, arg: Any, since: str) -> float:
    """Wait, frame by frame, for the JavaScript predicate `shows(arg)`, then for that frame to be painted (a task
    queued from its animation frame runs after the paint); ms from the JavaScript time `since` to then."""
    elapsed = page.evaluate(
        f"""(arg) => new Promise((resolve, reject) => {{
            const shows = {shows};
            const deadline = performance.now() + {TIMEOUT_MS};
            const check = () => {{
                if (shows(arg)) requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - ({since}))));
                else if (performance.now() > deadline)
                    reject(new Error(`never showed; the page says: ${{document.body.innerText.slice(0, 500)}}`));
                else requestAnimationFrame(check);
            }};
            check();
        }})""",
        arg,
    )
    return float(elapsed)


def press(page: Any, key: str, changed: str, before: Any) -> float:
    """Press `key`; ms from the key event to the painted frame where `changed(before)` holds."""
    page.evaluate("() => { window.__keyAt = null; }")
    page.keyboard.press(key)
    return painted(page, f"(before) => window.__keyAt !== null && ({changed})(before)", before, "window.__keyAt")


def state(page: Any, expression: str) -> Any:
    return page.evaluate(f"() => ({expression})")


# What shows now, per page (read before a press; a press's result shows once it is another, non-empty value).
REVEALED = "document.querySelector('.box-label.revealed')?.dataset.key ?? ''"
FOCUSED = "document.querySelector('.crop.focused')?.dataset.key ?? ''"
CONFLICT_TITLE = "document.querySelector('#crosscheck h1')?.textContent ?? ''"
# The field a navigation went to shows: the last part of the new address names it in `shown`'s text.
VIEWER_FIELD = "document.querySelector('#viewer[data-ready]')?.getAttribute('aria-label') ?? ''"
NEW_FIELD = "`field ${location.pathname.split('/').pop()} image`"
CROSSCHECK_FIELD = "`field #${location.pathname.split('/').pop()} `"


def changed(now: str) -> str:
    return f"(before) => {{ const v = {now}; return v !== '' && v !== before; }}"


def navigated(shown: str, names: str) -> str:
    return f"(path) => location.pathname !== path && ({shown}).includes({names})"


def measure_keys(page: Any, presses: int, steps: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    """Per key, the times of `presses` presses; each step is (key, what shows now, predicate on it)."""
    times: dict[str, list[float]] = {key: [] for key, _, _ in steps}
    for _ in range(presses):
        for key, now, shows in steps:
            times[key].append(press(page, key, shows, state(page, now)))
    return times


def open_annotator(page: Any, field_id: int) -> None:
    page.goto(f"/fields/{field_id}")
    painted(page, "() => document.querySelector('#viewer[data-ready]') !== null", None, "0")
    page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
    page.evaluate(RECORD_KEYS)


def annotator_times(page: Any, fields: list[int], presses: int) -> dict[str, list[float]]:
    open_annotator(page, fields[0])
    cells = measure_keys(page, presses, [("j", REVEALED, changed(REVEALED))])
    next_field = navigated(VIEWER_FIELD, NEW_FIELD)
    field_times = [press(page, "]", next_field, state(page, "location.pathname")) for _ in range(presses)]
    return {"j": cells["j"], "]": field_times}


def gallery_first_paint(page: Any, case_id: int) -> float:
    """ms from the start of the navigation to the painted frame that shows the gallery's first crops."""
    page.goto(f"/gallery/case/{case_id}?source=consensus", wait_until="commit")
    first = painted(page, "() => document.querySelector('.gallery-main[data-ready] .crop') !== null", None, "0")
    # The crops' field images load after the paint; the next measurement starts once they are in (on a small
    # machine they otherwise hold the server's workers while the next page waits for its scripts).
    page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
    return first


def gallery_times(page: Any, case_id: int, presses: int, loads: int) -> tuple[dict[str, list[float]], list[float]]:
    paints = [gallery_first_paint(page, case_id) for _ in range(loads)]
    page.evaluate(RECORD_KEYS)
    steps = [("ArrowRight", FOCUSED, changed(FOCUSED)), ("]", FOCUSED, changed(FOCUSED))]
    return measure_keys(page, presses, steps), paints


def crosscheck_times(page: Any, fields: list[int], presses: int) -> dict[str, list[float]]:
    page.goto(f"/crosscheck/{fields[0]}")
    painted(page, "() => document.querySelector('#crosscheck h1') !== null", None, "0")
    page.evaluate(RECORD_KEYS)
    conflicts = measure_keys(page, presses, [("j", CONFLICT_TITLE, changed(CONFLICT_TITLE))])
    next_field = navigated(CONFLICT_TITLE, CROSSCHECK_FIELD)
    field_times = [press(page, "]", next_field, state(page, "location.pathname")) for _ in range(presses)]
    return {"j": conflicts["j"], "]": field_times}


def figures(times: dict[str, list[float]]) -> dict[str, Any]:
    every = [t for values in times.values() for t in values]
    result: dict[str, Any] = {
        "presses": len(every),
        "p50_ms": round(load.percentile(every, 0.50), 1),
        "p95_ms": round(load.percentile(every, 0.95), 1),
    }
    result["keys"] = {
        key: {"p50_ms": round(load.percentile(v, 0.50), 1), "p95_ms": round(load.percentile(v, 0.95), 1)}
        for key, v in times.items()
    }
    return result


def browse(url: str, fixtures: dict[str, Any], password: str, presses: int, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=url)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto("/login")
            page.fill("#username", USERNAME)
            page.fill("#password", password)
            page.click("form.login button[type=submit]")
            page.wait_for_selector("header.top nav")
            annotator = annotator_times(page, fixtures["annotator_fields"], presses)
            gallery, paints = gallery_times(page, fixtures["gallery_case"], presses, loads)
            crosscheck = crosscheck_times(page, fixtures["crosscheck_fields"], presses)
        finally:
            browser.close()
    return {
        "annotator": figures(annotator),
        "gallery": figures(gallery),
        "crosscheck": figures(crosscheck),
        "gallery_first_paint": {
            "loads": len(paints),
            "p50_ms": round(load.percentile(paints, 0.50), 1),
            "max_ms": round(max(paints), 1),
        },
    }


# --- the run ----------------------------------------------------------------------------------------------------------


def child(env: dict[str, str], command: list[str], what: str) -> str:
    done = subprocess.run(command, env=env, cwd=load.REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="aicell-ui-"))
    database_url, is_postgres = load.target_database(args.database_url, workdir, suffix="ui")
    if is_postgres:
        load.postgres_create(database_url)
    env = load.production_env(database_url, workdir)
    env["STATIC_ROOT"] = str(workdir / "static")
    password = secrets.token_urlsafe(16)
    server: subprocess.Popen[bytes] | None = None
    try:
        _, seed_s = load.prepare(args, env, workdir, is_postgres=is_postgres)
        started = time.monotonic()
        size = ["--fields", str(args.fields), "--cells", str(args.cells), "--gallery-cells", str(args.gallery_cells)]
        fixtures_out = child(
            env, [sys.executable, "-m", "benchmarks.ui", "--fixtures", "--password", password, *size], "fixtures"
        )
        fixtures = json.loads(fixtures_out.strip().splitlines()[-1])
        fixtures_s = time.monotonic() - started
        child(env, [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], "collectstatic")
        server, url = load.start_gunicorn(env, workdir, args.workers)
        load_before = load.load_average()
        try:
            result = browse(url, fixtures, password, args.presses, args.loads)
        except Exception:
            print(f"the server's log:\n{(workdir / 'gunicorn.log').read_text()[-3000:]}", file=sys.stderr)
            raise
        paint_ok = result["gallery_first_paint"]["max_ms"] <= GOAL_FIRST_PAINT_MS
        result.update(
            {
                "fields": args.fields,
                "cells": args.cells,
                "gallery_cells": args.gallery_cells,
                "database": "postgresql" if is_postgres else "sqlite",
                "seed_s": round(seed_s + fixtures_s, 1),
                "cpu_count": os.cpu_count(),
                "load_average": max(load_before, load.load_average()),
                "goal": f"p95 <= {GOAL_P95_MS:.0f} ms per page, gallery first paint <= {GOAL_FIRST_PAINT_MS:.0f} ms",
                "goal_met": paint_ok
                and all(result[p]["p95_ms"] <= GOAL_P95_MS for p in ("annotator", "gallery", "crosscheck")),
            }
        )
        return result
    finally:
        if server is not None:
            load.stop(server)
        if is_postgres and not args.keep and not args.database_url:
            load.postgres_drop(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--cells", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=10, help="seeded annotators (two per field)")
    parser.add_argument("--gallery-cells", type=int, default=2_000, help="cells of the gallery's large case")
    parser.add_argument("--presses", type=int, default=20, help="presses measured per key")
    parser.add_argument("--loads", type=int, default=5, help="gallery first paints measured")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--database-url", help="a dedicated database to use (and keep) instead of <DATABASE_URL>_ui")
    parser.add_argument("--keep", action="store_true", help="keep the seeded <DATABASE_URL>_ui for the next run")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--fixtures", action="store_true", help=argparse.SUPPRESS)  # the child that seeds extras
    parser.add_argument("--password", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fixtures:
        return fixtures_main(args)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("annotator", "gallery", "crosscheck"):
            f = result[name]
            keys = ", ".join(f"{k}: p50 {v['p50_ms']} / p95 {v['p95_ms']}" for k, v in f["keys"].items())
            print(f"{name:10} p50 {f['p50_ms']:6.1f} ms  p95 {f['p95_ms']:6.1f} ms  ({keys})")
        paint = result["gallery_first_paint"]
        print(
            f"gallery first paint ({result['gallery_cells']} cells): p50 {paint['p50_ms']} ms, max {paint['max_ms']} ms"
        )
        verdict = "met" if result["goal_met"] else "NOT met"
        print(f"goal: {result['goal']}: {verdict} (load average {result['load_average']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
