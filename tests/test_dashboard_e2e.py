"""The organizer dashboard in a real browser: a demo server in a subprocess, headless Chromium.

The organizer signs in with the API key, picks the demo event and keeps the page open; a sale made through
the API shows up on the page within a few seconds. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support import ARTIFACTS
from tests.test_web_e2e import DemoServer, demo_server

EVENT_ID = 1  # the demo event


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("dashboard-e2e")) as running:
        yield running


async def sell(base: str, quantity: int) -> str:
    """Holds, orders and pays standing tickets of the demo event through the API; returns the order id."""
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        event = (await client.get(f"/api/v1/events/{EVENT_ID}")).json()
        standing = next(t for t in event["ticket_types"] if t["name"] == "Standing")
        hold = await client.post(
            f"/api/v1/events/{EVENT_ID}/holds",
            json={"tickets": [{"ticket_type_id": standing["id"], "quantity": quantity}]},
        )
        assert hold.status_code == 201, hold.text
        order = await client.post(
            "/api/v1/orders",
            json={"hold_id": hold.json()["id"], "buyer_name": "Ada", "buyer_email": "ada@example.com"},
        )
        assert order.status_code == 201, order.text
        body = order.json()
        paid = await client.post(body["payment"]["next_action"]["url"], json={"outcome": "succeeded"})
        assert paid.status_code == 202, paid.text
        token = {"X-Order-Token": body["access_token"]}
        deadline = time.monotonic() + 15
        while (await client.get(f"/api/v1/orders/{body['id']}", headers=token)).json()["status"] != "paid":
            assert time.monotonic() < deadline, "the order was not paid within 15 s"
            await asyncio.sleep(0.1)
        return str(body["id"])


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
async def test_a_sale_appears_on_the_open_dashboard(
    demo: DemoServer, browser: Browser, viewport: dict[str, int]
) -> None:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(f"{demo.url}/organizer/dashboard")
        # Keyboard only: the key field, then Enter.
        await page.get_by_label("Organizer API key").fill(demo.organizer_key)
        await page.get_by_label("Organizer API key").press("Enter")
        await expect(page.get_by_label("Event", exact=True)).to_be_visible(timeout=10_000)
        assert demo.organizer_key not in page.url
        stored = await page.evaluate("sessionStorage.getItem('admitone.organizerKey')")
        assert stored == demo.organizer_key
        await page.get_by_label("Event", exact=True).select_option(str(EVENT_ID))
        sold = page.locator("#stat-sold")
        await expect(sold).to_have_text(re.compile(r"^\d+$"), timeout=10_000)
        await expect(page.locator("#live-status")).to_contain_text("Live", timeout=10_000)
        before = int(await sold.inner_text())

        started = time.monotonic()
        await sell(demo.url, 2)
        await expect(sold).to_have_text(str(before + 2), timeout=5_000)
        lag = time.monotonic() - started
        await expect(page.locator("#chart-sold svg rect.bar")).to_have_count(30)
        await expect(page.locator("#chart-through .bar-row").first).to_be_visible()
        name = "desktop" if viewport["width"] > 600 else "phone"
        await page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
        assert lag < 20
        assert errors == []
        # Signing out forgets the key.
        await page.get_by_role("button", name="Sign out").click()
        assert await page.evaluate("sessionStorage.getItem('admitone.organizerKey')") is None
        await expect(page.get_by_label("Organizer API key")).to_be_focused()
    finally:
        await context.close()


async def test_a_wrong_key_is_refused(demo: DemoServer, browser: Browser) -> None:
    page = await browser.new_page()
    try:
        await page.goto(f"{demo.url}/organizer/dashboard")
        await page.get_by_label("Organizer API key").fill("adm_wrong_key")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not accepted", timeout=10_000)
        assert await page.evaluate("sessionStorage.getItem('admitone.organizerKey')") is None
    finally:
        await page.close()
