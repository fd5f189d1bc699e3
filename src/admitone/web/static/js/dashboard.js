// The organizer dashboard: sign in with the API key (kept in sessionStorage), pick an event, and watch
// its numbers live over the analytics WebSocket. Charts are inline SVG drawn here; no libraries.

const KEY = "admitone.organizerKey";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let socket = null;
let socketEvent = null;
let retry = 0;
let lastSold = null;

function showAlert(text) {
  const box = $("alert");
  box.textContent = text || "";
  box.hidden = !text;
}

async function call(path) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(path, {
    headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((body && body.detail) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function money(minor, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function percent(x) {
  return x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`;
}

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function svgBox(width, height, label) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  el("title", {}, svg).textContent = label;
  return svg;
}

function timeLabel(iso) {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function drawSold(points) {
  const W = 600, H = 200, P = 24;
  const values = points.map((p) => p.counters.tickets_sold);
  const max = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  const svg = svgBox(W, H, `Tickets sold per minute; ${total} in the last ${points.length} minutes`);
  el("line", { x1: P, y1: H - P, x2: W - 4, y2: H - P, class: "axis" }, svg);
  const step = (W - P - 4) / Math.max(1, values.length);
  values.forEach((v, i) => {
    const h = ((H - 2 * P) * v) / max;
    const bar = el("rect", { x: P + i * step + 1, y: H - P - h, width: Math.max(1, step - 2), height: h, class: "bar" }, svg);
    el("title", {}, bar).textContent = `${timeLabel(points[i].bucket_start)}: ${v}`;
  });
  el("text", { x: 2, y: P - 8 }, svg).textContent = String(max);
  if (points.length) {
    el("text", { x: P, y: H - 6 }, svg).textContent = timeLabel(points[0].bucket_start);
    el("text", { x: W - 40, y: H - 6 }, svg).textContent = timeLabel(points[points.length - 1].bucket_start);
  }
  $("chart-sold").replaceChildren(svg);
}

function drawRevenue(points, currency) {
  const W = 600, H = 200, P = 24;
  let sum = 0;
  const values = points.map((p) => (sum += p.counters.revenue_minor - p.counters.refunded_minor));
  const max = Math.max(1, ...values);
  const svg = svgBox(W, H, `Revenue over the last ${points.length} minutes: ${money(sum, currency)}`);
  el("line", { x1: P, y1: H - P, x2: W - 4, y2: H - P, class: "axis" }, svg);
  const step = (W - P - 4) / Math.max(1, values.length - 1);
  const xy = values.map((v, i) => [P + i * step, H - P - ((H - 2 * P) * Math.max(0, v)) / max]);
  if (xy.length) {
    const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    el("polygon", { points: `${P},${H - P} ${line} ${xy[xy.length - 1][0]},${H - P}`, class: "area" }, svg);
    el("polyline", { points: line, class: "line" }, svg);
  }
  el("text", { x: 2, y: P - 8 }, svg).textContent = money(max, currency);
  $("chart-revenue").replaceChildren(svg);
}

function drawThrough(summary) {
  const box = $("chart-through");
  const parts = [];
  for (const [title, rows] of [
    ["Ticket types", summary.ticket_types],
    ["Quotas", summary.quotas],
    ["Sections", summary.sections],
  ]) {
    if (!rows.length) continue;
    const h = document.createElement("h3");
    h.textContent = title;
    parts.push(h);
    for (const row of rows) {
      const line = document.createElement("div");
      line.className = "bar-row";
      const name = document.createElement("span");
      name.textContent = row.name;
      const cap = row.capacity || 0;
      const svg = svgBox(100, 10, `${row.name}: ${row.sold} sold${row.held ? `, ${row.held} held` : ""} of ${row.capacity ?? "unlimited"}`);
      svg.setAttribute("preserveAspectRatio", "none");
      el("rect", { x: 0, y: 0, width: 100, height: 10, class: "track" }, svg);
      const sold = cap ? (100 * row.sold) / cap : 0;
      const held = cap && row.held ? (100 * row.held) / cap : 0;
      el("rect", { x: 0, y: 0, width: Math.min(100, sold), height: 10, class: "sold" }, svg);
      if (held) el("rect", { x: Math.min(100, sold), y: 0, width: Math.min(100 - Math.min(100, sold), held), height: 10, class: "held" }, svg);
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = `${row.sold} / ${row.capacity ?? "∞"} (${percent(row.sell_through)})`;
      line.append(name, svg, num);
      parts.push(line);
    }
  }
  box.replaceChildren(...parts);
}

function render(summary) {
  const t = summary.totals;
  const sold = $("stat-sold");
  sold.textContent = String(t.tickets_sold);
  if (lastSold !== null && t.tickets_sold !== lastSold) {
    sold.classList.add("flash");
    setTimeout(() => sold.classList.remove("flash"), 800);
  }
  lastSold = t.tickets_sold;
  $("stat-revenue").textContent = money(summary.net_revenue_minor, summary.currency);
  $("stat-holds").textContent = String(summary.active_holds);
  $("stat-conversion").textContent = `${percent(summary.conversion.orders_per_hold)} · paid ${percent(summary.conversion.paid_per_hold)}`;
  $("stat-eta").textContent = summary.remaining === 0 ? "sold out" : duration(summary.sell_out_seconds);
  $("stat-checkins").textContent = String(t.check_ins);
  $("stat-chat").textContent = String(t.chat_messages);
  $("stat-remaining").textContent = `${summary.remaining} of ${summary.capacity}`;
  drawSold(summary.recent);
  drawRevenue(summary.recent, summary.currency);
  drawThrough(summary);
}

function setStatus(text) {
  $("live-status").textContent = text;
}

function connect(eventId) {
  if (socket) {
    socket.onclose = null;
    socket.close(1000);
  }
  socketEvent = eventId;
  lastSold = null;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/organizer/events/${eventId}/analytics/live`);
  socket = ws;
  setStatus("Connecting…");
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", api_key: sessionStorage.getItem(KEY) }));
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type !== "summary") return;
    retry = 0;
    setStatus(`Live · updated ${new Date().toLocaleTimeString()}`);
    render(data.summary);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    if (event.code === 4401) {
      signOut("The API key was refused. Sign in again.");
      return;
    }
    if (event.code === 4404) {
      setStatus("This event is not yours or no longer exists.");
      return;
    }
    retry = Math.min(retry + 1, 6);
    setStatus("Reconnecting…");
    setTimeout(() => socketEvent === eventId && connect(eventId), 250 * 2 ** retry);
  };
}

async function loadEvents() {
  const data = await call("/api/v1/organizer/analytics");
  const select = $("event-select");
  select.replaceChildren(
    ...data.events.map((e) => {
      const option = document.createElement("option");
      option.value = String(e.event_id);
      option.textContent = `${e.name} (${e.status.replace("_", " ")})`;
      return option;
    }),
  );
  if (!data.events.length) {
    setStatus("You have no events yet.");
    return;
  }
  const wanted = sessionStorage.getItem("admitone.dashboardEvent");
  if (wanted && data.events.some((e) => String(e.event_id) === wanted)) select.value = wanted;
  connect(Number(select.value));
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    await call("/api/v1/organizer/me");
    await loadEvents();
  } catch (error) {
    sessionStorage.removeItem(KEY);
    showAlert(error.status === 401 ? "That API key was not accepted." : error.message);
    return;
  }
  showAlert("");
  $("sign-in").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  $("event-select").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY);
  socketEvent = null;
  if (socket) {
    socket.onclose = null;
    socket.close(1000);
    socket = null;
  }
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  showAlert(message);
  $("api-key").value = "";
  $("api-key").focus();
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) signIn(key);
});
$("sign-out").addEventListener("click", () => signOut());
$("event-select").addEventListener("change", (event) => {
  sessionStorage.setItem("admitone.dashboardEvent", event.target.value);
  connect(Number(event.target.value));
});

if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
