// The event page: seat map, best-available and standing-ticket pickers, the buyer's hold with its
// countdown, checkout and test payment, the live connection and the chat.

import { $, ApiError, announce, api, countdown, eventDate, h, money, randomKey, serverNow, showAlert, store } from "./api.js";
import { ChatPanel } from "./chat.js";
import { LiveConnection } from "./live.js";
import { SeatMap } from "./seatmap.js";

const eventId = Number(location.pathname.match(/^\/events\/(\d+)/)?.[1]);

const page = {
  event: null,
  map: null,
  live: null, // seat id -> "held" | "sold" (free seats are absent), as the server last said
  liveKnown: false,
  selection: new Set(),
  requested: new Set(), // seats of a hold request on its way: their change to "held" may be ours
  hold: store.get(`hold:${eventId}`), // the current hold (HoldOut)
  order: store.get(`order:${eventId}`), // {id, token, expires_at, total_minor, currency, payUrl, lines, buyer}
  ticketTypes: new Map(), // id -> TicketTypeOut
  available: new Map(), // ticket type id -> how many are left
  sections: [],
  maxSeats: 8,
  timer: null,
  busy: false,
  warnedMinute: false,
};

// -- helpers ---------------------------------------------------------------------------------------------
function mySeatIds() {
  const lines = page.order?.lines || page.hold?.lines || [];
  return new Set(lines.filter((l) => l.seat_id !== null && l.seat_id !== undefined).map((l) => l.seat_id));
}

function hasHold() {
  return Boolean(page.hold || page.order);
}

function seatedPrice(category) {
  for (const tt of page.ticketTypes.values()) {
    if (tt.kind === "seated" && tt.category === category) return tt;
  }
  return null;
}

function explain(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.status) {
    case 409:
      return `Sorry, not available: ${error.detail}`;
    case 410:
      return `Too late: ${error.detail}`;
    case 503:
      return `The box office is very busy right now. ${error.detail}`;
    default:
      return error.detail;
  }
}

function setBusy(busy) {
  page.busy = busy;
  renderControls();
}

// -- seat states -----------------------------------------------------------------------------------------
function displayState(seatId, mine) {
  const state = page.live.get(seatId) || "free";
  if (state !== "free" && mine.has(seatId)) return "mine";
  return state;
}

function refreshSeat(seatId, mine = mySeatIds(), { quiet = false } = {}) {
  if (!page.map) return;
  const state = displayState(seatId, mine);
  page.map.setState(seatId, state);
  if (state !== "free" && page.selection.has(seatId) && !page.requested.has(seatId)) {
    page.selection.delete(seatId);
    page.map.setSelected(seatId, false);
    if (!quiet) {
      const seat = page.map.seats.get(seatId);
      showAlert(`Seat ${seat.label} was just taken by someone else and is no longer selected.`, "info");
    }
    renderSelection();
  }
}

function refreshAllSeats() {
  if (!page.map) return;
  const mine = mySeatIds();
  for (const id of page.map.seats.keys()) refreshSeat(id, mine);
  renderSections();
}

// -- live updates ----------------------------------------------------------------------------------------
function onLive(message) {
  if (message.type === "snapshot") {
    page.live = new Map(Object.entries(message.seats || {}).map(([id, state]) => [Number(id), state]));
    page.liveKnown = true;
    refreshAllSeats();
    applyTicketTypes(message.ticket_types);
    chat.applySnapshot(message);
  } else if (message.type === "changes") {
    const mine = mySeatIds();
    let lostMine = false;
    for (const [key, state] of Object.entries(message.seats || {})) {
      const id = Number(key);
      if (state === "free") page.live.delete(id);
      else page.live.set(id, state);
      if (state === "free" && mine.has(id)) lostMine = true;
      refreshSeat(id, mine);
    }
    if (message.seats && Object.keys(message.seats).length) renderSections();
    applyTicketTypes(message.ticket_types);
    if (Array.isArray(message.events)) chat.applyEvents(message.events);
    if (lostMine) checkHoldStillThere();
  }
}

function onLiveStatus(status, detail) {
  const box = $("live-status");
  const previous = box.dataset.status;
  box.dataset.status = status;
  const words = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };
  box.querySelector(".live-text").textContent = words[status] || status;
  box.title =
    status === "live"
      ? "Seat colours update live"
      : status === "reconnecting"
        ? "The live connection was lost; seat colours may be out of date until it is back"
        : detail || "";
  if (status === "reconnecting" && previous === "live") {
    announce("Connection lost. Reconnecting; seat colours may be out of date.");
    showAlert("Connection to the box office lost. Reconnecting… seat colours may be out of date meanwhile.", "info");
  } else if (status === "live" && previous === "reconnecting") {
    announce("Live again.");
    if ($("alert").textContent.startsWith("Connection to the box office lost")) showAlert("");
  } else if (status === "offline" && detail) {
    showAlert(detail);
  }
}

function applyTicketTypes(list) {
  if (!Array.isArray(list)) return;
  for (const item of list) page.available.set(item.ticket_type_id, item.available);
  renderGA();
  renderLegend();
}

// -- rendering -------------------------------------------------------------------------------------------
function renderEventHead() {
  const event = page.event;
  document.title = `${event.name} · admitone`;
  $("event-title").textContent = event.name;
  $("event-when").textContent = eventDate(event.starts_at, event.timezone);
  $("event-desc").textContent = event.description || "";
  if (event.status !== "on_sale") {
    showAlert(`This event is ${event.status.replace("_", " ")}; tickets cannot be bought.`, "info");
  }
}

function renderLegend() {
  if (!page.map) return;
  const item = (swatch, text) => h("li", {}, h("span", { class: `swatch ${swatch}`, "aria-hidden": "true" }), text);
  const categories = [];
  for (const [category, index] of page.map.categoryIndex) {
    const tt = seatedPrice(category);
    const left = tt && page.available.has(tt.id) ? ` · ${page.available.get(tt.id)} left` : "";
    const price = tt ? ` · ${money(tt.price_minor, tt.currency)}` : "";
    categories.push(item(`cat-${index}`, `Category ${category}${price}${left}`));
  }
  $("legend").replaceChildren(
    h("ul", { "aria-label": "Free seats by price category" }, categories),
    h(
      "ul",
      { "aria-label": "Seat states" },
      item("selected", "Selected"),
      item("mine", "Held by you"),
      item("held", "Held by others"),
      item("sold", "Sold"),
    ),
  );
}

function renderSelection() {
  const count = page.selection.size;
  let total = 0;
  let currency = page.event?.currency || "EUR";
  for (const id of page.selection) {
    const tt = seatedPrice(page.map.seats.get(id).category);
    if (tt) {
      total += tt.price_minor;
      currency = tt.currency;
    }
  }
  const summary = $("selection-summary");
  if (count) {
    const labels = [...page.selection].map((id) => h("span", { class: "seat-name", text: page.map.seats.get(id).label }));
    const list = labels.flatMap((label, i) => (i ? [", ", label] : [label]));
    summary.replaceChildren(`${count} ${count === 1 ? "seat" : "seats"} selected (`, ...list, `) · ${money(total, currency)}`);
  } else {
    summary.textContent = "No seats selected.";
  }
  $("hold-selected").textContent = count ? `Hold ${count} selected ${count === 1 ? "seat" : "seats"}` : "Hold selected";
  renderControls();
}

function renderControls() {
  const blocked = page.busy || hasHold();
  $("hold-selected").disabled = blocked || page.selection.size === 0;
  $("clear-selection").disabled = page.selection.size === 0;
  for (const button of document.querySelectorAll("#best-form button, .ga-item button")) {
    const soldOut = button.dataset.soldOut === "true";
    button.disabled = blocked || soldOut;
  }
  $("place-order").disabled = page.busy;
  $("release-hold").disabled = page.busy;
  $("pay-button").disabled = page.busy;
  $("cancel-order").disabled = page.busy;
}

function renderSections() {
  const select = $("best-section");
  if (!page.map) return;
  const current = select.value;
  const options = [h("option", { value: "" }, "Any section")];
  for (const section of page.sections) {
    const free = page.map.freeIn(section.section_id);
    options.push(h("option", { value: section.section_id }, `${section.name} (${free} free)`));
  }
  select.replaceChildren(...options);
  select.value = current;
}

function renderGA() {
  const list = $("ga-list");
  const types = [...page.ticketTypes.values()].filter((t) => t.kind === "admission");
  $("ga").hidden = types.length === 0;
  if (!types.length) return;
  for (const tt of types) {
    const left = page.available.get(tt.id) ?? 0;
    let item = list.querySelector(`[data-ticket-type-id="${tt.id}"]`);
    if (!item) {
      const inputId = `ga-qty-${tt.id}`;
      item = h(
        "li",
        { class: "ga-item", dataset: { ticketTypeId: tt.id } },
        h("span", { class: "ga-name", text: tt.name }),
        h("span", { class: "ga-price", text: money(tt.price_minor, tt.currency) }),
        h("span", { class: "avail", "aria-live": "off" }),
        h(
          "form",
          { class: "ga-controls", "aria-label": `Hold ${tt.name}` },
          h("label", { for: inputId }, "Quantity"),
          h("input", { id: inputId, type: "number", min: tt.min_per_order, max: tt.max_per_order, value: tt.min_per_order, inputmode: "numeric", required: true }),
          h("button", { type: "submit", class: "primary" }, "Hold"),
        ),
      );
      item.querySelector("form").addEventListener("submit", (event) => {
        event.preventDefault();
        const quantity = Number(item.querySelector("input").value);
        placeHold({ tickets: [{ ticket_type_id: tt.id, quantity }] }, `${quantity} × ${tt.name}`);
      });
      list.append(item);
    }
    const avail = item.querySelector(".avail");
    avail.textContent = left > 0 ? `${left} left` : "Sold out";
    avail.className = left === 0 ? "avail none" : left < 20 ? "avail low" : "avail";
    const input = item.querySelector("input");
    input.max = String(Math.max(1, Math.min(tt.max_per_order, left)));
    item.querySelector("button").dataset.soldOut = String(left === 0);
  }
  renderControls();
}

function renderHold() {
  const order = page.order;
  const hold = page.hold;
  $("hold-empty").hidden = Boolean(order || hold);
  $("hold-active").hidden = !(hold && !order);
  $("order-active").hidden = !order;
  clearInterval(page.timer);
  page.timer = null;
  page.warnedMinute = false;
  if (order) {
    $("order-lines").replaceChildren(...order.lines.map(lineItem));
    $("order-total").textContent = money(order.total_minor, order.currency);
    $("order-id").textContent = order.id;
    $("order-buyer").textContent = order.buyer;
    startCountdown(order.expires_at, "order-countdown", onOrderExpired);
  } else if (hold) {
    $("hold-lines").replaceChildren(...hold.lines.map(lineItem));
    $("hold-total").textContent = money(hold.total_minor, hold.currency);
    startCountdown(hold.expires_at, "hold-countdown", onHoldExpired);
  }
  refreshAllSeats();
  renderControls();
}

function lineItem(line) {
  const what = line.seat_label ? `${line.seat_label} (${line.ticket_type})` : `${line.quantity} × ${line.ticket_type}`;
  const currency = page.hold?.currency || page.order?.currency || page.event.currency;
  return h("li", {}, h("span", { text: what }), h("span", { text: money(line.unit_price_minor * line.quantity, currency) }));
}

function startCountdown(expiresAt, elementId, onExpired) {
  const element = $(elementId);
  const box = element.closest(".countdown");
  if (!expiresAt) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const deadline = Date.parse(expiresAt);
  const tick = () => {
    const left = deadline - serverNow();
    element.textContent = countdown(left);
    element.setAttribute("datetime", expiresAt);
    box.classList.toggle("urgent", left < 60000);
    if (left < 60000 && left > 0 && !page.warnedMinute) {
      page.warnedMinute = true;
      announce("Less than one minute left to complete your purchase.");
    }
    if (left <= 0) {
      clearInterval(page.timer);
      page.timer = null;
      onExpired();
    }
  };
  tick();
  page.timer = setInterval(tick, 1000);
}

// -- holds -----------------------------------------------------------------------------------------------
function setHold(hold) {
  page.hold = hold;
  if (hold) store.set(`hold:${eventId}`, hold);
  else store.remove(`hold:${eventId}`);
  renderHold();
}

function setOrder(order) {
  page.order = order;
  if (order) store.set(`order:${eventId}`, order);
  else store.remove(`order:${eventId}`);
  renderHold();
}

async function placeHold(body, what) {
  if (hasHold()) {
    showAlert("You already hold tickets. Check out or release them first.", "info");
    return;
  }
  setBusy(true);
  showAlert("");
  for (const id of body.seat_ids || []) page.requested.add(id);
  try {
    const hold = await api("POST", `/api/v1/events/${eventId}/holds`, { body, idempotencyKey: randomKey() });
    page.requested.clear();
    for (const id of page.selection) page.map?.setSelected(id, false);
    page.selection.clear();
    renderSelection();
    // Show the seats as ours at once; the live connection confirms them.
    for (const line of hold.lines) if (line.seat_id) page.live?.set(line.seat_id, "held");
    setHold(hold);
    const seats = hold.lines.filter((l) => l.seat_label).map((l) => l.seat_label);
    announce(`Held ${seats.length ? seats.join(", ") : what}. Complete checkout before the countdown ends.`);
    $("hold-title").scrollIntoView({ block: "nearest", behavior: "smooth" });
  } catch (error) {
    page.requested.clear();
    if (error instanceof ApiError && error.status === 409 && Array.isArray(error.body?.seat_ids)) {
      for (const id of error.body.seat_ids) if (page.live && !page.live.has(id)) page.live.set(id, "held");
    }
    // Seats that went to someone else meanwhile leave the selection; the message below says why.
    const mine = mySeatIds();
    for (const id of [...page.selection]) refreshSeat(id, mine, { quiet: true });
    showAlert(explain(error));
    announce(explain(error));
  } finally {
    page.requested.clear();
    setBusy(false);
  }
}

async function releaseHold() {
  const hold = page.hold;
  if (!hold) return;
  setBusy(true);
  try {
    await api("DELETE", `/api/v1/holds/${hold.id}`);
    showAlert("Your tickets were released.", "ok");
    announce("Your tickets were released.");
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 410 || error.status === 404))) {
      showAlert(explain(error));
      return;
    }
  } finally {
    setBusy(false);
  }
  for (const line of hold.lines) if (line.seat_id) page.live?.delete(line.seat_id);
  setHold(null);
}

async function checkHoldStillThere() {
  if (page.order) return;
  const hold = page.hold;
  if (!hold) return;
  try {
    const current = await api("GET", `/api/v1/holds/${hold.id}`);
    if (current.status !== "active" && current.status !== "ordered") onHoldExpired();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) onHoldExpired();
  }
}

function onHoldExpired() {
  if (!page.hold) return;
  setHold(null);
  const message = "Your hold expired and its tickets went back on sale. You can choose again.";
  showAlert(message);
  announce(message);
}

function onOrderExpired() {
  if (!page.order) return;
  setOrder(null);
  setHold(null);
  const message = "Your order expired unpaid and its tickets went back on sale. You can choose again.";
  showAlert(message);
  announce(message);
}

// -- checkout --------------------------------------------------------------------------------------------
async function placeOrder(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const hold = page.hold;
  if (!hold) return;
  const name = $("buyer-name").value.trim();
  const email = $("buyer-email").value.trim();
  setBusy(true);
  showAlert("");
  try {
    const order = await api("POST", "/api/v1/orders", {
      body: {
        hold_id: hold.id,
        buyer_name: name,
        buyer_email: email,
        payment_provider: hold.total_minor === 0 ? "free" : "test",
      },
      idempotencyKey: randomKey(),
    });
    store.set(`orderToken:${order.id}`, order.access_token);
    if (order.status === "paid") {
      location.assign(`/orders/${order.id}`);
      return;
    }
    setOrder({
      id: order.id,
      token: order.access_token,
      expires_at: order.expires_at,
      total_minor: order.total_minor,
      currency: order.currency,
      payUrl: order.payment?.next_action?.url || null,
      lines: hold.lines,
      buyer: `${order.buyer_name} <${order.buyer_email}>`,
    });
    announce("Order placed. Pay to receive your tickets.");
    $("pay-button").focus();
  } catch (error) {
    if (error instanceof ApiError && error.status === 410) {
      setHold(null);
    }
    showAlert(explain(error));
    announce(explain(error));
  } finally {
    setBusy(false);
  }
}

async function pay() {
  const order = page.order;
  if (!order) return;
  const status = $("pay-status");
  setBusy(true);
  showAlert("");
  try {
    if (order.payUrl) {
      status.textContent = "Paying with the test card…";
      try {
        await api("POST", order.payUrl, { body: { outcome: "succeeded" } });
      } catch (error) {
        // 409: the payment is already settled (paid in another tab); the order tells what happened.
        if (!(error instanceof ApiError && error.status === 409)) throw error;
      }
    }
    status.textContent = "Waiting for the payment provider to confirm…";
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      const current = await api("GET", `/api/v1/orders/${order.id}`, { headers: { "X-Order-Token": order.token } });
      if (current.status === "paid") {
        status.textContent = "Paid. Opening your tickets…";
        store.remove(`order:${eventId}`);
        store.remove(`hold:${eventId}`);
        location.assign(`/orders/${order.id}`);
        return;
      }
      if (current.status !== "pending_payment") {
        setOrder(null);
        setHold(null);
        showAlert(`Your order is ${current.status.replace("_", " ")}; its tickets went back on sale.`);
        status.textContent = "";
        return;
      }
      if (current.payment?.status === "failed") {
        order.payUrl = current.payment.next_action?.url || order.payUrl;
        status.textContent = "";
        showAlert("The payment was declined. Please try again.");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    status.textContent = "";
    showAlert("The payment is taking longer than usual. Your order stays reserved; try Pay again in a moment.", "info");
  } catch (error) {
    status.textContent = "";
    if (error instanceof ApiError && error.status === 410) onOrderExpired();
    showAlert(explain(error));
  } finally {
    setBusy(false);
  }
}

async function cancelOrder() {
  const order = page.order;
  if (!order) return;
  setBusy(true);
  try {
    await api("POST", `/api/v1/orders/${order.id}/cancel`, { headers: { "X-Order-Token": order.token } });
    showAlert("Your order was cancelled and its tickets went back on sale.", "ok");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 410)) {
      showAlert(explain(error));
      return;
    }
  } finally {
    setBusy(false);
  }
  for (const line of order.lines) if (line.seat_id) page.live?.delete(line.seat_id);
  setOrder(null);
  setHold(null);
}

/** After a reload: is the hold or order kept in this tab still current? */
async function restore() {
  if (page.order) {
    try {
      const current = await api("GET", `/api/v1/orders/${page.order.id}`, { headers: { "X-Order-Token": page.order.token } });
      if (current.status === "paid") {
        setOrder(null);
        setHold(null);
        showAlert("Your order is paid.", "ok");
        $("alert").querySelector("span").append(" ", h("a", { href: `/orders/${current.id}` }, "See your tickets"));
        return;
      }
      if (current.status !== "pending_payment") {
        setOrder(null);
        setHold(null);
        return;
      }
      page.order.payUrl = current.payment?.next_action?.url || page.order.payUrl;
      page.order.expires_at = current.expires_at;
      setOrder(page.order);
    } catch {
      setOrder(null);
      setHold(null);
    }
    return;
  }
  if (page.hold) {
    try {
      const current = await api("GET", `/api/v1/holds/${page.hold.id}`);
      if (current.status === "active") setHold(current);
      else setHold(null);
    } catch {
      setHold(null);
    }
  }
}

// -- seat selection --------------------------------------------------------------------------------------
function toggleSeat(seat) {
  const state = page.map.state(seat.id);
  if (state === "mine") {
    announce(`${seat.label} is already held by you.`);
    return;
  }
  if (state !== "free") {
    announce(`${seat.label} is ${state === "sold" ? "sold" : "held by someone else"}.`);
    return;
  }
  if (hasHold()) {
    showAlert("You already hold tickets. Check out or release them before choosing more.", "info");
    return;
  }
  if (page.selection.has(seat.id)) {
    page.selection.delete(seat.id);
    page.map.setSelected(seat.id, false);
  } else {
    if (page.selection.size >= page.maxSeats) {
      showAlert(`You can choose up to ${page.maxSeats} seats per order.`, "info");
      return;
    }
    page.selection.add(seat.id);
    page.map.setSelected(seat.id, true);
  }
  renderSelection();
}

function clearSelection() {
  for (const id of page.selection) page.map.setSelected(id, false);
  page.selection.clear();
  renderSelection();
}

// -- start -----------------------------------------------------------------------------------------------
const chat = new ChatPanel(eventId, { announce });

async function main() {
  if (!Number.isInteger(eventId) || eventId < 1) {
    $("event-title").textContent = "Event not found";
    return;
  }
  try {
    page.event = await api("GET", `/api/v1/events/${eventId}`);
  } catch (error) {
    $("event-title").textContent = error.status === 404 ? "Event not found" : "The event could not be loaded";
    showAlert(error.status === 404 ? "There is no such event on sale. See all events." : explain(error));
    $("live-status").dataset.status = "offline";
    $("live-status").querySelector(".live-text").textContent = "Offline";
    return;
  }
  renderEventHead();
  for (const tt of page.event.ticket_types) page.ticketTypes.set(tt.id, tt);
  const seated = page.event.ticket_types.filter((t) => t.kind === "seated");
  if (seated.length) page.maxSeats = Math.max(...seated.map((t) => t.max_per_order));
  $("best-qty").max = String(page.maxSeats);
  $("event-layout").hidden = false;

  const [availability, seatMap] = await Promise.all([
    api("GET", `/api/v1/events/${eventId}/availability`).catch(() => null),
    page.event.venue_id ? api("GET", `/api/v1/events/${eventId}/seats`).catch((error) => error) : null,
  ]);
  if (availability) {
    page.sections = availability.sections;
    for (const item of availability.ticket_types) page.available.set(item.ticket_type_id, item.available);
  }
  if (seatMap && !(seatMap instanceof Error) && seatMap.seats.length) {
    const categories = [...new Set(seatMap.seats.map((s) => s.category))].sort();
    const sectionNames = new Map(page.sections.map((s) => [s.section_id, s.name]));
    page.map = new SeatMap($("seat-map"), seatMap.seats, {
      sectionNames,
      categoryIndex: new Map(categories.map((c, i) => [c, i % 6])),
      onToggle: toggleSeat,
    });
    if (!page.liveKnown) {
      page.live = new Map(seatMap.seats.filter((s) => s.state !== "free").map((s) => [s.id, s.state]));
    }
  } else {
    $("seating").hidden = true;
    $("best").hidden = true;
    if (seatMap instanceof Error) showAlert(`The seat map could not be loaded: ${explain(seatMap)}`);
  }
  page.live ??= new Map();
  renderLegend();
  renderSections();
  renderGA();
  renderSelection();
  await restore();
  renderHold();

  page.liveConnection = new LiveConnection(eventId, { onMessage: onLive, onStatus: onLiveStatus });
  page.liveConnection.start();
}

$("hold-selected").addEventListener("click", () => {
  const ids = [...page.selection];
  if (ids.length) placeHold({ seat_ids: ids }, `${ids.length} seats`);
});
$("clear-selection").addEventListener("click", clearSelection);
$("best-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!event.currentTarget.reportValidity()) return;
  const quantity = Number($("best-qty").value);
  const section = $("best-section").value;
  const body = { best_available: { quantity } };
  if (section) body.best_available.section_id = Number(section);
  placeHold(body, `${quantity} best available seats`);
});
$("release-hold").addEventListener("click", releaseHold);
$("checkout-form").addEventListener("submit", placeOrder);
$("pay-button").addEventListener("click", pay);
$("cancel-order").addEventListener("click", cancelOrder);
let zoomState = { canZoomIn: true, canZoomOut: false };
function zoom(step) {
  if (!page.map) return;
  zoomState = page.map.zoomBy(step);
  $("zoom-in").disabled = !zoomState.canZoomIn;
  $("zoom-out").disabled = !zoomState.canZoomOut;
}
$("zoom-in").addEventListener("click", () => zoom(1));
$("zoom-out").addEventListener("click", () => zoom(-1));
$("zoom-fit").addEventListener("click", () => zoom(0));
$("zoom-out").disabled = true;

main();
