// The order page: the order's state and, once paid, each ticket with its QR code.
// The order's access token stays in this browser tab (sessionStorage). It can also be handed over
// in the address fragment (#token=...), which never reaches the server.

import { $, api, eventDate, h, money, showAlert, store } from "./api.js";

const orderId = decodeURIComponent(location.pathname.match(/^\/orders\/([A-Za-z0-9_-]+)/)?.[1] || "");
const STATUS = {
  pending_payment: "Awaiting payment",
  paid: "Paid",
  expired: "Expired",
  cancelled: "Cancelled",
  refunded: "Refunded",
};

function tokenOf() {
  const fragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fragment) {
    store.set(`orderToken:${orderId}`, fragment);
    history.replaceState(null, "", location.pathname);
    return fragment;
  }
  return store.get(`orderToken:${orderId}`);
}

function qrUrl(ticket, token) {
  return `/api/v1/orders/${encodeURIComponent(orderId)}/tickets/${ticket.id}/qr.svg?token=${encodeURIComponent(token)}`;
}

function renderTickets(order, token, event) {
  const items = order.tickets.map((ticket) => {
    const what = ticket.seat_label || ticket.ticket_type;
    return h(
      "li",
      { class: "card ticket", dataset: { ticketId: ticket.id, status: ticket.status } },
      h("img", { class: "qr", src: qrUrl(ticket, token), width: 200, height: 200, alt: `QR code of the ticket for ${what}` }),
      h("span", { class: "ticket-type", text: ticket.ticket_type }),
      ticket.seat_label ? h("span", { class: "seat-label", text: ticket.seat_label }) : null,
      event ? h("span", { class: "muted small", text: event.name }) : null,
      h("code", { text: ticket.code }),
      ticket.status !== "valid" ? h("span", { class: "badge warn", text: `Ticket ${ticket.status}` }) : null,
    );
  });
  $("tickets").replaceChildren(...items);
  $("tickets-section").hidden = items.length === 0;
}

function renderOrder(order, event) {
  $("order-summary").hidden = false;
  $("sum-event").textContent = event ? `${event.name}, ${eventDate(event.starts_at, event.timezone)}` : `Event ${order.event_id}`;
  const badge = $("sum-status");
  badge.textContent = STATUS[order.status] || order.status;
  badge.dataset.status = order.status;
  $("sum-name").textContent = order.buyer_name;
  $("sum-email").textContent = order.buyer_email;
  $("sum-total").textContent = money(order.total_minor, order.currency);
  $("sum-id").textContent = order.id;
  const back = $("back-link");
  back.href = `/events/${order.event_id}`;
  back.textContent = "← Back to the event";
}

async function main() {
  const line = $("order-status-line");
  if (!orderId) {
    line.textContent = "";
    showAlert("This address does not name an order.");
    return;
  }
  const token = tokenOf();
  if (!token) {
    line.textContent = "";
    showAlert(
      "This order's access token is not in this browser tab. Open the order from the tab you bought in, " +
        "or use the link with #token=… you were given.",
    );
    return;
  }
  const headers = { "X-Order-Token": token };
  let order;
  try {
    order = await api("GET", `/api/v1/orders/${encodeURIComponent(orderId)}`, { headers });
  } catch (error) {
    line.textContent = "";
    showAlert(error.status === 403 ? "The access token of this order is wrong." : error.detail || String(error));
    return;
  }
  const event = await api("GET", `/api/v1/events/${order.event_id}`).catch(() => null);
  renderOrder(order, event);
  // A payment confirmation may still be on its way: keep looking for a while.
  const deadline = Date.now() + 60000;
  while (order.status === "pending_payment" && Date.now() < deadline) {
    line.textContent = "Waiting for the payment confirmation…";
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      order = await api("GET", `/api/v1/orders/${encodeURIComponent(orderId)}`, { headers });
    } catch {
      /* keep the last answer and try again */
    }
    renderOrder(order, event);
  }
  if (order.status === "paid") {
    const count = order.tickets.length;
    line.textContent = `Paid. Here ${count === 1 ? "is your ticket" : `are your ${count} tickets`}.`;
    $("order-title").textContent = "Your tickets";
  } else if (order.status === "pending_payment") {
    line.textContent = "This order is still waiting for its payment.";
  } else {
    line.textContent = `This order is ${STATUS[order.status].toLowerCase()}.`;
  }
  renderTickets(order, token, event);
}

$("print").addEventListener("click", () => window.print());
main();
