// The event list: published events, soonest first.

import { $, api, eventDate, h, showAlert } from "./api.js";

const STATUS = { on_sale: "On sale", ended: "Ended", cancelled: "Cancelled" };

async function main() {
  const status = $("events-status");
  let events;
  try {
    events = await api("GET", "/api/v1/events");
  } catch (error) {
    status.textContent = "";
    showAlert(`The events could not be loaded: ${error.detail || error.message}`);
    return;
  }
  if (!events.length) {
    status.textContent = "No events are on sale right now.";
    return;
  }
  status.textContent = `${events.length} ${events.length === 1 ? "event" : "events"}`;
  $("event-list").replaceChildren(
    ...events.map((event) => {
      const url = `/events/${event.id}`;
      return h(
        "li",
        { class: "card event-card" },
        h("h2", {}, h("a", { href: url, text: event.name })),
        h("p", { class: "muted", text: eventDate(event.starts_at, event.timezone) }),
        h(
          "p",
          {},
          h("span", { class: event.status === "on_sale" ? "badge" : "badge warn", text: STATUS[event.status] || event.status }),
          " ",
          h("span", { class: "badge", text: event.seated ? "Seated and standing" : "General admission" }),
        ),
        h("a", { class: "go", href: url, "aria-label": `Tickets for ${event.name}` }, "Tickets"),
      );
    }),
  );
}

main();
