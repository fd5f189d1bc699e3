// Shared helpers: the JSON API client, session storage, formatting and small DOM helpers.

/** An API answer that is not 2xx; `detail` is the human message of the problem+json body. */
export class ApiError extends Error {
  constructor(status, detail, body = null, retryAfter = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

let serverOffsetMs = 0;

/** The server's time now, estimated from the Date header of its answers (for countdowns). */
export function serverNow() {
  return Date.now() + serverOffsetMs;
}

function noteServerTime(response) {
  const header = response.headers.get("Date");
  if (!header) return;
  const server = Date.parse(header);
  if (Number.isNaN(server)) return;
  const offset = server - Date.now();
  // The Date header has one-second resolution: only correct clocks that are clearly off.
  serverOffsetMs = Math.abs(offset) > 2500 ? offset : 0;
}

/** A random key for Idempotency-Key: a retried request then cannot hold or order twice. */
export function randomKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Calls the JSON API. Resolves to the parsed body (or null); rejects with ApiError.
 * Network failures become status 0 with a message for people.
 */
export async function api(method, path, { body, headers = {}, idempotencyKey } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (idempotencyKey) init.headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "Could not reach the server. Check your connection and try again.");
  }
  noteServerTime(response);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const detail = (data && typeof data.detail === "string" && data.detail) || `${response.status} ${response.statusText}`;
    const retry = response.headers.get("Retry-After");
    throw new ApiError(response.status, detail, data, retry === null ? null : Number(retry));
  }
  return data;
}

/** JSON values in sessionStorage: they live as long as the browser tab. */
export const store = {
  get(key) {
    try {
      const raw = sessionStorage.getItem(`admitone:${key}`);
      return raw === null ? null : JSON.parse(raw);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      sessionStorage.setItem(`admitone:${key}`, JSON.stringify(value));
    } catch {
      /* storage full or disabled: the page still works until it is reloaded */
    }
  },
  remove(key) {
    try {
      sessionStorage.removeItem(`admitone:${key}`);
    } catch {
      /* ignore */
    }
  },
};

const moneyFormats = new Map();

/** Formats an amount in minor units (cents) in its currency. */
export function money(minor, currency) {
  let format = moneyFormats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    moneyFormats.set(currency, format);
  }
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}

/** An event's start in its own time zone, e.g. "Friday, 12 June 2026 at 19:30 (Europe/Berlin)". */
export function eventDate(iso, timeZone) {
  const when = new Date(iso);
  try {
    const text = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short", timeZone }).format(when);
    return `${text} (${timeZone})`;
  } catch {
    return when.toLocaleString();
  }
}

export function clockTime(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** "m:ss" for a number of milliseconds left. */
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return `${minutes}:${seconds}`;
}

/**
 * Builds an element. Strings among the children become text nodes, never markup: user text is safe.
 * `attrs` keys: "class", "text", "dataset" (object), event handlers as "on<event>", others as attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

/** Shows (or with an empty message hides) the page's alert box. kind: "error" | "info" | "ok". */
export function showAlert(message, kind = "error") {
  const box = $("alert");
  if (!box) return;
  box.replaceChildren();
  if (!message) {
    box.hidden = true;
    return;
  }
  box.dataset.kind = kind;
  box.append(
    h("span", { text: message }),
    h("button", { type: "button", "aria-label": "Dismiss", onclick: () => showAlert("") }, "×"),
  );
  box.hidden = false;
}

/** Says something to screen readers through the page's polite live region. */
export function announce(message) {
  const region = $("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick makes screen readers read the same message twice in a row too.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}
