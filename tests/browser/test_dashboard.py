"""The dashboard in headless Chromium: live progress and logs, actions, filters, forms."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from jobyard import access
from jobyard.domain.roles import Role
from tests.browser.conftest import Dashboard, screenshot
from tests.factories import wait_for


def _submit_api(url: str, job_type: str, args: dict[str, object]) -> str:
    response = httpx.post(f"{url}/api/v1/jobs", json={"type": job_type, "args": args})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _mark_page(page: Page) -> None:
    """Set a flag that a reload would clear."""
    page.evaluate("window.__notReloaded = true")


def _not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def test_submit_from_the_form_and_watch_progress_and_logs_live(
    page: Page, dashboard: Dashboard
) -> None:
    url = dashboard.url
    page.goto(f"{url}/submit?type=t.progress")
    screenshot(page, "submit")
    page.fill("#arg-steps", "6")
    page.fill("#arg-delay_s", "0.4")
    page.click("#submit-job")
    page.wait_for_url(f"{url}/jobs/*")
    _mark_page(page)
    progress = page.locator("#job-progress")
    expect(progress).not_to_have_attribute("aria-valuenow", "100")  # it starts below 100 %
    expect(page.locator("#job-log .line").nth(2)).to_be_visible()  # log lines arrive live
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=30_000)
    expect(page.locator("#job-state")).to_have_text("succeeded")
    expect(page.locator("#job-result")).to_contain_text("6")
    assert page.locator("#job-log .line").count() >= 5
    assert _not_reloaded(page), "the page reloaded; updates must come over the WebSocket"
    screenshot(page, "job-succeeded")


def test_cancel_a_running_job(page: Page, dashboard: Dashboard, tmp_path: Path) -> None:
    url = dashboard.url
    marker = str(tmp_path / "started")
    job_id = _submit_api(url, "t.until_cancelled", {"marker": marker})
    page.goto(f"{url}/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_text("running")
    screenshot(page, "job-running")
    page.click("#cancel-job")
    expect(page.locator("#job-state")).to_have_text("cancelled")
    expect(page.locator(".flash")).to_contain_text("job cancelled")


def test_retry_a_failed_job(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    job_id = _submit_api(url, "t.fail", {"reason": "browser says no"})
    page.goto(f"{url}/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_text("failed", timeout=30_000)
    expect(page.locator("#job-error")).to_contain_text("browser says no")
    expect(page.locator("#attempts li")).to_have_count(2)
    screenshot(page, "job-failed")
    page.click("#retry-job")
    expect(page.locator(".flash")).to_contain_text("job queued again")
    expect(page.locator("#attempts li")).to_have_count(4, timeout=30_000)
    expect(page.locator("#job-state")).to_have_text("failed")


def test_filter_and_search_the_list(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    needle = f"needle-{uuid.uuid4().hex[:8]}"
    wanted = _submit_api(url, "t.echo", {"message": needle})
    _submit_api(url, "t.echo", {"message": "hay"})
    _submit_api(url, "t.progress", {"steps": 1, "delay_s": 0})
    page.goto(f"{url}/jobs")
    page.select_option("select[name=type]", "t.progress")
    page.click("#job-filters button[type=submit]")
    rows = page.locator("#jobs-table tbody tr[data-job-id]")
    expect(rows.first).to_be_visible()
    assert set(rows.locator("td:nth-child(3)").all_inner_texts()) == {"t.progress"}
    page.select_option("select[name=type]", "")
    page.fill("input[name=q]", needle)
    page.click("#job-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", wanted)
    # Moments are ISO 8601 UTC in the markup and local time (Tokyo, UTC+9) on screen.
    created = rows.first.locator("time[datetime]")
    stamp = created.get_attribute("datetime") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    tokyo = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(hours=9)
    expect(created).to_have_text(tokyo.strftime("%d/%m/%Y, %H:%M:%S"))
    # Once it ran, the row shows how long it took (`0.01s`).
    page.wait_for_timeout(500)
    page.reload()
    expect(rows.first.locator("[data-role=duration]")).to_have_text(re.compile(r"^\d+\.\d\ds$"))
    page.goto(f"{url}/job-types")
    echo = page.locator("#job-types tr[data-type='t.echo']")
    expect(echo).to_be_visible()
    assert int(echo.locator("[data-role=runs]").inner_text()) >= 2
    expect(echo.locator("[data-role=failure-rate]")).to_have_text("0.0%")
    page.select_option("#window", "1")
    page.click("#window-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/job-types\?hours=1$"))
    screenshot(page, "job-types")
    page.goto(f"{url}/jobs?q={needle}")
    page.fill("input[name=q]", wanted)  # an id finds that job
    page.click("#job-filters button[type=submit]")
    expect(rows).to_have_count(1)
    page.goto(f"{url}/jobs")
    screenshot(page, "jobs")


def test_bulk_cancel_selected_jobs(page: Page, dashboard: Dashboard, tmp_path: Path) -> None:
    url = dashboard.url
    markers = [str(tmp_path / f"started-{n}") for n in range(2)]
    ids = [_submit_api(url, "t.until_cancelled", {"marker": m}) for m in markers]
    page.goto(f"{url}/jobs?type=t.until_cancelled&state=running")
    for job_id in ids:
        expect(page.locator(f"tr[data-job-id='{job_id}']")).to_be_visible(timeout=30_000)
        page.check(f"tr[data-job-id='{job_id}'] input[name=ids]")
    page.click("button[value=cancel_selected]")
    expect(page.locator(".flash")).to_contain_text("cancelled 2 of 2 job(s)")
    for job_id in ids:
        state = httpx.get(f"{url}/api/v1/jobs/{job_id}").json()["state"]
        assert state == "cancelled"


def test_invalid_form_value_shows_its_error(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    page.goto(f"{url}/submit?type=t.model")
    page.fill("#arg-x", "1.5")
    page.fill("#arg-y", "2")
    page.click("#submit-job")
    error = page.locator(".field-error[data-field=x]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("integer")
    expect(page.locator("#arg-x")).to_have_value("1.5")  # what was typed stays
    screenshot(page, "submit-invalid")


def test_every_page_renders_and_updates_live(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    page.goto(f"{url}/")
    expect(page.locator("#live-status.on")).to_be_visible()
    _mark_page(page)
    before = int(page.locator("[data-state-count=succeeded]").inner_text())
    _submit_api(url, "t.echo", {"message": "overview"})
    expect(page.locator("[data-state-count=succeeded]")).not_to_have_text(str(before))
    assert _not_reloaded(page)
    screenshot(page, "overview")
    page.goto(f"{url}/pools")
    expect(page.locator("#pools tr[data-pool=general]")).to_be_visible()
    screenshot(page, "pools")
    page.goto(f"{url}/schedules")
    page.fill("#s-name", "browser-nightly")
    page.select_option("#s-type", "t.noop")
    page.fill("#s-cron", "30 2 * * *")
    page.fill("#s-tz", "Europe/Berlin")
    page.click("#create-schedule")
    expect(page.locator("tr[data-schedule=browser-nightly]")).to_be_visible()
    page.locator("tr[data-schedule=browser-nightly] button", has_text="Pause").click()
    expect(page.locator("tr[data-schedule=browser-nightly]")).to_contain_text("paused")
    screenshot(page, "schedules")
    page.fill("#s-name", "bad")
    page.fill("#s-cron", "61 * * * *")
    page.click("#create-schedule")
    expect(page.locator("#schedule-error")).to_contain_text("cron")


def test_a_viewer_key_cannot_cancel(page: Page, dashboard: Dashboard, tmp_path: Path) -> None:
    url, stack, keyed_url = dashboard
    _record, secret = access.create_key(
        stack.runtime, f"viewer-{uuid.uuid4().hex[:6]}", Role.VIEWER
    )
    job_id = _submit_api(url, "t.until_cancelled", {"marker": str(tmp_path / "started")})
    page.goto(f"{keyed_url}/jobs/{job_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#key", "jy_wrong")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("unknown or revoked key")
    screenshot(page, "login")
    page.fill("#key", secret)
    page.click("#login-submit")
    expect(page).to_have_url(f"{keyed_url}/jobs/{job_id}")
    expect(page.locator("#who")).to_contain_text("viewer")
    expect(page.locator("#job-state")).to_have_text("running")
    expect(page.locator("#cancel-job")).to_have_count(0)
    csrf = page.evaluate("document.querySelector('meta[name=csrf-token]').content")
    forced = page.request.post(f"{keyed_url}/ui/jobs/{job_id}/cancel", form={"csrf_token": csrf})
    assert forced.status == 403
    assert httpx.get(f"{url}/api/v1/jobs/{job_id}").json()["state"] == "running"
    httpx.post(f"{url}/api/v1/jobs/{job_id}/cancel")


def test_charts_draw_stored_history_on_a_fresh_load(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    ids = [_submit_api(url, "t.echo", {"message": f"history {n}"}) for n in range(3)]

    def all_succeeded() -> bool:
        states = [httpx.get(f"{url}/api/v1/jobs/{job_id}").json()["state"] for job_id in ids]
        return all(state == "succeeded" for state in states)

    # Finished before the page opens: only stored history can show them.
    wait_for(all_succeeded, timeout_s=30, what="the jobs to finish")
    for _ in range(2):  # the first load, then a reload: the history is still there
        page.goto(f"{url}/")
        total = page.locator("#throughput-total")
        expect(total).to_have_text(re.compile(r"^\d+ finished in the last hour$"))
        assert int(total.get_attribute("data-count") or 0) >= 3
    page.select_option("#chart-window", "15m")
    expect(page.locator("#throughput-bucket")).to_have_text("15 s")
    expect(total).to_contain_text("finished in the last 15 minutes")
    assert int(total.get_attribute("data-count") or 0) >= 3
    page.reload()  # the chosen window is remembered
    expect(page.locator("#chart-window")).to_have_value("15m")
    # The depth chart's time axis spans the window: 15 minutes, not years.
    labels = page.locator("#depth-chart .u-axis").first.inner_text()
    assert not re.search(r"20[2-9]\d", labels), labels
    before = int(total.get_attribute("data-count") or 0)
    _submit_api(url, "t.echo", {"message": "live"})
    expect(total).not_to_have_text(f"{before} finished in the last 15 minutes")  # live
    screenshot(page, "overview-history")


def test_reprocess_every_matching_job_with_progress(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    marker = uuid.uuid4().hex[:8]
    ids = [_submit_api(url, "t.echo", {"message": f"{marker}-{n}"}) for n in range(5)]
    for job_id in ids:
        wait_for(partial(_succeeded, url, job_id), what=f"job {job_id} to succeed")
    page.goto(f"{url}/jobs?type=t.echo&state=succeeded")
    page.click("#rerun-campaign summary")
    page.fill("#rerun-form input[name=args_patch]", '{"count": 7}')
    page.fill("#rerun-form input[name=rate]", "3")  # several steps: the bar moves
    page.click("#rerun-form button[type=submit]")
    status = page.locator("#rerun-status")
    expect(status).to_contain_text(" left", timeout=10_000)
    expect(status).to_contain_text(", 0 left", timeout=60_000)
    screenshot(page, "jobs-rerun")
    listed = httpx.get(f"{url}/api/v1/jobs", params={"type": "t.echo", "limit": 500}).json()
    copies = {job["rerun_of"]: job for job in listed["items"] if job["rerun_of"] in ids}
    assert set(copies) == set(ids)
    assert all(job["args"]["count"] == 7 for job in copies.values())

    page.click("#rerun-form button[type=submit]")  # again: resumes, nothing left to submit
    expect(status).to_contain_text("(0 now), 0 left")
    page.goto(f"{url}/jobs/{copies[ids[0]]['id']}")
    expect(page.locator("#rerun-of")).to_have_text(ids[0])


def _succeeded(url: str, job_id: str) -> bool | None:
    return httpx.get(f"{url}/api/v1/jobs/{job_id}").json()["state"] == "succeeded" or None
