"""The door staff's check-in page in a real browser: the app served by uvicorn on 127.0.0.1, driven by
headless Chromium on a phone-sized screen. Paid tickets are made through the API with the test harness;
the page signs in with an organizer key, admits a ticket typed by hand and refuses it at another gate.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from admitone.core.app import create_app
from admitone.core.clock import ManualClock
from admitone.core.settings import Settings
from tests.conftest import base_settings
from tests.harness import Harness
from tests.support import ARTIFACTS, CHROMIUM, NO_CHROMIUM, free_port, serving

if not CHROMIUM.exists():
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

# Each step waits for the page to show its answer; on a loaded machine a scan and the count refresh after
# it can take longer than Playwright's default 5 s.
expect.set_options(timeout=15_000)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[tuple[str, Harness]]:
    """The app on a real port, and a harness driving the same app (and its state) in-process."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "admitone.db")
    port = free_port()
    settings = Settings(data_dir=data, **base_settings(public_url=f"http://127.0.0.1:{port}"))  # type: ignore[arg-type]
    clock = ManualClock()
    app = create_app(settings, clock, self_transport=True)
    async with (
        serving(app, port, lifespan=True) as base,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60
        ) as client,
    ):
        yield base, Harness(app=app, client=client, clock=clock, state=app.state.admitone)


async def _type_and_check(page: Page, text: str) -> None:
    code = page.get_by_label("Ticket code")
    await code.fill(text)
    await code.press("Enter")


async def test_door_admits_a_ticket_once(served: tuple[str, Harness], browser: Browser) -> None:
    base, harness = served
    auth = await harness.organizer("Door Test Org")
    ga = await harness.ga_event(auth)
    await harness.ok(
        "PATCH", f"/api/v1/organizer/events/{ga.event_id}", json={"name": "Door Night"}, headers=auth
    )
    order = await harness.sell(
        ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]}
    )
    first, second = order["tickets"]
    key = auth["Authorization"].removeprefix("Bearer ")

    context = await browser.new_context(base_url=base, viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto("/organizer/checkin")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("API key")).to_be_focused()
    await page.screenshot(path=str(ARTIFACTS / "checkin-sign-in.png"))

    # Sign in with the keyboard; the key stays out of the URL and in session storage only.
    await page.get_by_label("API key").fill(key)
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#who-name")).to_have_text("Door Test Org")
    await expect(page.get_by_label("Event")).to_have_value(str(ga.event_id))
    await expect(page.get_by_label("Event").locator("option:checked")).to_contain_text("Door Night")
    assert key not in page.url
    # The key is stored once signing in has finished (after the first count): wait for that, not a race.
    await page.wait_for_function(
        "key => Object.values(sessionStorage).some(v => v.includes(key))", arg=key, timeout=15_000
    )
    stored = await page.evaluate("() => JSON.stringify(Object.assign({}, sessionStorage))")
    assert key in stored
    assert await page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))") == "{}"
    await expect(page.get_by_label("Scanner name")).to_be_focused()
    await page.get_by_label("Scanner name").fill("gate-1")
    await expect(page.locator("#count-in")).to_have_text("0")
    await expect(page.locator("#count-total")).to_have_text("2")

    # Camera scanning only where the browser can read QR codes; otherwise a note says so.
    has_detector = await page.evaluate("() => 'BarcodeDetector' in window")
    if has_detector:
        await expect(page.get_by_role("button", name="Start camera")).to_be_visible()
    else:
        await expect(page.locator("#camera-note")).to_be_visible()
        await expect(page.get_by_role("button", name="Start camera")).to_be_hidden()

    result = page.locator("#result")
    await expect(result).to_have_attribute("aria-live", "assertive")

    # The bare code, typed by hand: VALID, and the count goes up.
    await _type_and_check(page, first["code"])
    await expect(result).to_have_attribute("data-result", "valid")
    await expect(page.locator("#verdict")).to_have_text("VALID")
    await expect(page.locator("#detail")).to_contain_text("Standing")
    await expect(page.locator("#count-in")).to_have_text("1")
    await expect(page.get_by_label("Ticket code")).to_be_focused()
    await expect(page.get_by_label("Ticket code")).to_have_value("")
    await page.screenshot(path=str(ARTIFACTS / "checkin-valid.png"))

    # Another gate scans the same ticket: ALREADY USED, with the time and the first gate.
    await page.get_by_label("Scanner name").fill("gate-2")
    await _type_and_check(page, first["code"])
    await expect(result).to_have_attribute("data-result", "already_used")
    await expect(page.locator("#verdict")).to_have_text("ALREADY USED")
    await expect(page.locator("#detail")).to_contain_text(re.compile(r"Admitted at .*\d.* by gate-1"))
    await expect(page.locator("#count-in")).to_have_text("1")
    await page.screenshot(path=str(ARTIFACTS / "checkin-already-used.png"))

    # The signed QR payload, as a keyboard-wedge scanner would type it, admits the second ticket.
    await _type_and_check(page, second["qr_payload"])
    await expect(page.locator("#verdict")).to_have_text("VALID")
    await expect(page.locator("#count-in")).to_have_text("2")

    # A forged code.
    await _type_and_check(page, second["qr_payload"][:-2] + "xx")
    await expect(result).to_have_attribute("data-result", "invalid")
    await expect(page.locator("#verdict")).to_have_text("INVALID")
    await expect(page.locator("#detail")).to_contain_text("signature")
    await page.screenshot(path=str(ARTIFACTS / "checkin-invalid.png"))

    # A check-in made elsewhere shows up in the count within a few seconds.
    extra = await harness.sell(
        ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
    )
    await expect(page.locator("#count-total")).to_have_text("3", timeout=10_000)
    await harness.ok(
        "POST",
        f"/api/v1/organizer/events/{ga.event_id}/checkins",
        json={"payload": extra["tickets"][0]["qr_payload"], "scanner": "gate-9"},
        headers=auth,
    )
    await expect(page.locator("#count-in")).to_have_text("3", timeout=10_000)

    # A reload keeps the session; signing out forgets the key.
    await page.reload()
    await expect(page.locator("#who-name")).to_have_text("Door Test Org")
    await expect(page.get_by_label("Scanner name")).to_have_value("gate-2")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert key not in await page.evaluate("() => JSON.stringify(Object.assign({}, sessionStorage))")
    assert errors == []
    await context.close()
