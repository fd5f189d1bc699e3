// The check-in page for door staff: sign in with an organizer API key, pick the event and a scanner
// name, then scan QR codes with the camera (where the browser can read them) or type ticket codes.
// The key lives in sessionStorage only: never in the URL, gone when the tab closes.

import { $, ApiError, api, h, showAlert, store } from "./api.js";

const KEY = "checkin:key";
const EVENT = "checkin:event";
const SCANNER = "checkin:scanner";
const REFRESH_MS = 5000;
const SAME_CODE_PAUSE_MS = 3000; // a QR code held in front of the camera is sent once, not every frame

const VERDICTS = {
  valid: "VALID",
  already_used: "ALREADY USED",
  invalid: "INVALID",
  wrong_event: "WRONG EVENT",
};

let apiKey = store.get(KEY);
let refreshTimer = null;
let busy = false;

function auth() {
  return { Authorization: `Bearer ${apiKey}` };
}

function eventId() {
  return $("event").value;
}

function scannerName() {
  return $("scanner").value.trim();
}

function localTime(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

async function call(method, path, body) {
  try {
    return await api(method, path, { body, headers: auth() });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut("The API key is not valid any more. Sign in again.");
    }
    throw error;
  }
}

function showResult(kind, verdict, detail) {
  const box = $("result");
  box.dataset.result = kind;
  $("verdict").textContent = verdict;
  $("detail").textContent = detail;
}

function describe(answer) {
  const ticket = answer.ticket;
  const what = ticket ? [ticket.ticket_type, ticket.seat_label && `seat ${ticket.seat_label}`].filter(Boolean).join(", ") : "";
  switch (answer.result) {
    case "valid":
      return what ? `Admit one: ${what}.` : answer.message;
    case "already_used":
      return `Admitted at ${localTime(answer.checked_in_at)} by ${answer.checked_in_by}.${what ? ` ${what}.` : ""}`;
    case "wrong_event":
      return answer.ticket_event_name ? `This ticket is for ${answer.ticket_event_name}.` : "This ticket is for another event.";
    default:
      return answer.message;
  }
}

async function refreshCount() {
  if (!apiKey || !eventId()) return;
  try {
    const summary = await call("GET", `/api/v1/organizer/events/${encodeURIComponent(eventId())}/checkins/summary`);
    $("count-in").textContent = String(summary.checked_in);
    $("count-total").textContent = String(summary.total);
  } catch {
    /* the next refresh tries again; scanning does not depend on the count */
  }
}

async function checkIn(payload) {
  payload = payload.trim();
  if (!payload || busy) return;
  if (!scannerName()) {
    showAlert("Give this scanner a name first (for example gate-1).");
    $("scanner").focus();
    return;
  }
  busy = true;
  store.set(SCANNER, scannerName());
  showResult("pending", "Checking…", "");
  try {
    const answer = await call("POST", `/api/v1/organizer/events/${encodeURIComponent(eventId())}/checkins`, {
      payload,
      scanner: scannerName(),
    });
    showAlert("");
    showResult(answer.result, VERDICTS[answer.result] || answer.result.toUpperCase(), describe(answer));
  } catch (error) {
    showResult("idle", "Not checked", error.detail || "The check did not go through. Try again.");
  } finally {
    busy = false;
  }
  await refreshCount();
}

// --- camera ------------------------------------------------------------------------------------------

let stream = null;
let scanTimer = null;
let lastCode = "";
let lastCodeAt = 0;

async function startCamera() {
  const video = $("camera");
  let detector;
  try {
    detector = new BarcodeDetector({ formats: ["qr_code"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (error) {
    showAlert(`The camera could not be started: ${error.message || error}. Type the code instead.`);
    stopCamera();
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  $("camera-toggle").textContent = "Stop camera";
  $("camera-toggle").setAttribute("aria-pressed", "true");
  scanTimer = setInterval(async () => {
    if (busy || video.readyState < 2) return;
    let codes = [];
    try {
      codes = await detector.detect(video);
    } catch {
      return;
    }
    const value = codes[0]?.rawValue;
    if (!value) return;
    const now = Date.now();
    if (value === lastCode && now - lastCodeAt < SAME_CODE_PAUSE_MS) return;
    lastCode = value;
    lastCodeAt = now;
    await checkIn(value);
  }, 250);
}

function stopCamera() {
  clearInterval(scanTimer);
  scanTimer = null;
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  const video = $("camera");
  video.srcObject = null;
  video.hidden = true;
  $("camera-toggle").textContent = "Start camera";
  $("camera-toggle").setAttribute("aria-pressed", "false");
}

function setUpCamera() {
  const supported = "BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia;
  $("camera-toggle").hidden = !supported;
  $("camera-note").hidden = Boolean(supported);
  if (supported) {
    $("camera-toggle").addEventListener("click", () => (stream ? stopCamera() : startCamera()));
  }
}

// --- sign-in and setup -------------------------------------------------------------------------------

function signOut(message = "") {
  apiKey = null;
  store.remove(KEY);
  stopCamera();
  clearInterval(refreshTimer);
  refreshTimer = null;
  $("sign-in").hidden = false;
  $("setup").hidden = true;
  $("scan").hidden = true;
  $("who").hidden = true;
  showAlert(message);
  $("api-key").focus();
}

async function enter() {
  const me = await call("GET", "/api/v1/organizer/me");
  const events = await call("GET", "/api/v1/organizer/events");
  $("who-name").textContent = me.name;
  $("who").hidden = false;
  const select = $("event");
  select.replaceChildren(
    ...events.map((event) =>
      h("option", { value: event.id, text: `${event.name} (${new Date(event.starts_at).toLocaleDateString()})` }),
    ),
  );
  const remembered = store.get(EVENT);
  if (remembered && events.some((event) => String(event.id) === String(remembered))) select.value = String(remembered);
  $("scanner").value = store.get(SCANNER) || "";
  $("sign-in").hidden = true;
  $("setup").hidden = false;
  $("scan").hidden = events.length === 0;
  if (events.length === 0) {
    showAlert("This organizer has no events yet.", "info");
    return;
  }
  showAlert("");
  await refreshCount();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refreshCount, REFRESH_MS);
  (scannerName() ? $("code") : $("scanner")).focus();
}

$("sign-in-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  apiKey = key;
  $("sign-in-button").disabled = true;
  try {
    await enter();
    store.set(KEY, key);
    $("api-key").value = "";
  } catch (error) {
    apiKey = null;
    showAlert(error.status === 401 ? "This API key is not valid." : error.detail || String(error));
  } finally {
    $("sign-in-button").disabled = false;
  }
});

$("sign-out").addEventListener("click", () => signOut());

$("event").addEventListener("change", () => {
  store.set(EVENT, eventId());
  showResult("idle", "Ready", "Scan a QR code or type a ticket code.");
  $("count-in").textContent = "–";
  $("count-total").textContent = "–";
  refreshCount();
});

$("scanner").addEventListener("change", () => store.set(SCANNER, scannerName()));

$("code-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const input = $("code");
  await checkIn(input.value);
  input.value = "";
  input.focus();
});

setUpCamera();
if (apiKey) {
  enter().catch((error) => {
    if (error.status !== 401) showAlert(error.detail || String(error));
  });
} else {
  $("api-key").focus();
}
