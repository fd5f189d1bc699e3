// The event chat beside the seat map: announcements pinned at the top, the messages, joining with a
// name and posting. Messages arrive over the event's live connection. Every piece of user text is put
// into the page with textContent, never parsed as markup.

import { $, ApiError, api, clockTime, h, store } from "./api.js";

const MAX_MESSAGES = 200;

function authorName(author) {
  if (typeof author === "string") return author;
  if (author && typeof author === "object") return author.name || "Someone";
  return "Someone";
}

function authorId(author) {
  return author && typeof author === "object" ? author.user_id ?? null : null;
}

export class ChatPanel {
  constructor(eventId, { announce }) {
    this.eventId = eventId;
    this.announce = announce;
    this.available = null; // null: not known yet
    this.settings = { slow_mode_seconds: 0, closed: false };
    this.me = store.get(`chat:${eventId}`);
    this.messages = new Map(); // id -> element
    this.announcements = new Map();
    this.waitUntil = 0;
    this.waitTimer = null;
    this.list = $("chat-messages");
    this.annList = $("announcements");
    $("chat-join").addEventListener("submit", (event) => {
      event.preventDefault();
      this.join();
    });
    $("chat-post").addEventListener("submit", (event) => {
      event.preventDefault();
      this.post();
    });
    this.renderForms();
    this.showEmpty();
  }

  base() {
    return `/api/v1/events/${this.eventId}/chat`;
  }

  // -- what the live connection delivers -------------------------------------------------------------
  applySnapshot(snapshot) {
    if (Array.isArray(snapshot.chat) || Array.isArray(snapshot.announcements)) {
      this.setAvailable(true);
      this.replace(snapshot.chat || [], snapshot.announcements || []);
      if (snapshot.chat_settings) this.applySettings(snapshot.chat_settings);
    } else if (this.available === null) {
      this.loadOverHttp();
    }
  }

  applyEvents(events) {
    for (const item of events) {
      if (item.kind === "chat.message" && item.message) {
        this.setAvailable(true);
        this.add(item.message, true);
      } else if (item.kind === "chat.deleted") {
        this.remove(item.message_id);
      } else if (item.kind === "chat.settings" && item.settings) {
        this.applySettings(item.settings);
      }
    }
  }

  async loadOverHttp() {
    try {
      const [chat, announcements] = await Promise.all([
        api("GET", `${this.base()}/messages?channel=chat&limit=50`),
        api("GET", `${this.base()}/messages?channel=announcements&limit=50`),
      ]);
      this.setAvailable(true);
      this.replace(chat.items || [], announcements.items || []);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.setAvailable(false);
      } else {
        this.setError(`The chat could not be loaded: ${error.detail || error.message}`);
      }
    }
  }

  setAvailable(available) {
    if (this.available === available) return;
    this.available = available;
    if (!available) {
      this.note("The chat is not open for this event.");
      this.list.replaceChildren();
      this.list.hidden = true;
    } else {
      this.note("");
      this.list.hidden = false;
    }
    this.renderForms();
  }

  applySettings(settings) {
    const wasClosed = Boolean(this.settings.closed);
    this.settings = { ...this.settings, ...settings };
    // An earlier refusal (too fast, closed) no longer says anything once the rules change.
    if (Boolean(this.settings.closed) !== wasClosed) this.setError("");
    const badge = $("chat-mode");
    if (this.settings.closed) {
      badge.textContent = "Closed";
      badge.hidden = false;
    } else if (this.settings.slow_mode_seconds > 0) {
      badge.textContent = `Slow mode: ${this.settings.slow_mode_seconds} s`;
      badge.hidden = false;
    } else {
      badge.hidden = true;
    }
    this.renderForms();
  }

  // -- rendering -------------------------------------------------------------------------------------
  replace(chat, announcements) {
    this.messages.clear();
    this.list.replaceChildren();
    this.announcements.clear();
    this.annList.replaceChildren();
    for (const message of announcements) this.add(message, false);
    for (const message of chat) this.add(message, false);
    this.showEmpty();
    this.scrollToEnd(true);
  }

  showEmpty() {
    const empty = this.list.querySelector(".chat-empty");
    if (this.messages.size === 0 && !empty && this.available !== false) {
      this.list.append(h("li", { class: "chat-empty", text: "No messages yet. Say hello!" }));
    } else if (this.messages.size > 0 && empty) {
      empty.remove();
    }
  }

  add(message, live) {
    if (message.channel === "announcements") {
      if (this.announcements.has(message.id)) return;
      const item = h(
        "li",
        { class: "announcement", dataset: { messageId: message.id } },
        h("span", { class: "ann-label", text: "Announcement" }),
        h("p", { text: message.text }),
      );
      this.annList.prepend(item);
      this.announcements.set(message.id, item);
      this.annList.hidden = false;
      if (live) this.announce(`Announcement: ${message.text}`);
      return;
    }
    if (this.messages.has(message.id)) return;
    const stick = this.nearEnd();
    const mine = this.me && (authorId(message.author) === this.me.user_id || (authorId(message.author) === null && authorName(message.author) === this.me.name));
    const item = h(
      "li",
      { class: mine ? "chat-msg mine" : "chat-msg", dataset: { messageId: message.id } },
      h(
        "div",
        { class: "meta" },
        h("span", { class: "author", text: authorName(message.author) }),
        message.posted_at ? h("time", { datetime: message.posted_at, text: clockTime(message.posted_at) }) : null,
      ),
      h("p", { text: message.text }),
    );
    this.list.append(item);
    this.messages.set(message.id, item);
    while (this.messages.size > MAX_MESSAGES) {
      const [oldest, node] = this.messages.entries().next().value;
      node.remove();
      this.messages.delete(oldest);
    }
    this.showEmpty();
    this.scrollToEnd(stick);
  }

  remove(id) {
    for (const map of [this.messages, this.announcements]) {
      const node = map.get(id);
      if (node) {
        node.remove();
        map.delete(id);
      }
    }
    this.annList.hidden = this.announcements.size === 0;
    this.showEmpty();
  }

  nearEnd() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
  }

  scrollToEnd(force) {
    if (force) this.list.scrollTop = this.list.scrollHeight;
  }

  note(text) {
    $("chat-note").textContent = text;
  }

  setError(text) {
    $("chat-error").textContent = text;
  }

  renderForms() {
    const join = $("chat-join");
    const post = $("chat-post");
    const usable = this.available === true;
    join.hidden = !usable || Boolean(this.me);
    post.hidden = !usable || !this.me;
    if (this.me) $("chat-me").textContent = `(as ${this.me.name})`;
    const closed = Boolean(this.settings.closed);
    const waiting = Date.now() < this.waitUntil;
    $("chat-text").disabled = closed;
    $("chat-send").disabled = closed || waiting;
    if (usable && closed) this.note("The chat is closed. You can still read it.");
    else if (usable && waiting) this.note(`You can post again in ${Math.ceil((this.waitUntil - Date.now()) / 1000)} s.`);
    else if (usable) this.note("");
  }

  /** Blocks posting for a while (slow mode or a rate limit), counting down visibly. */
  wait(seconds) {
    if (!(seconds > 0)) return;
    this.waitUntil = Date.now() + seconds * 1000;
    clearInterval(this.waitTimer);
    this.renderForms();
    this.waitTimer = setInterval(() => {
      if (Date.now() >= this.waitUntil) {
        clearInterval(this.waitTimer);
        this.waitTimer = null;
      }
      this.renderForms();
    }, 1000);
  }

  // -- actions ---------------------------------------------------------------------------------------
  async join() {
    const input = $("chat-name");
    const name = input.value.trim();
    if (!name) {
      this.setError("Choose a name to show in the chat.");
      input.focus();
      return;
    }
    const button = $("chat-join").querySelector("button");
    button.disabled = true;
    this.setError("");
    try {
      const me = await api("POST", `${this.base()}/join`, { body: { name } });
      this.me = { user_id: me.user_id, name: me.name, chat_token: me.chat_token };
      store.set(`chat:${this.eventId}`, this.me);
      this.renderForms();
      this.announce(`You joined the chat as ${me.name}.`);
      $("chat-text").focus();
    } catch (error) {
      this.setError(this.explain(error, "join"));
    } finally {
      button.disabled = false;
    }
  }

  async post() {
    const input = $("chat-text");
    const text = input.value.trim();
    if (!text || !this.me) return;
    const button = $("chat-send");
    button.disabled = true;
    this.setError("");
    try {
      const message = await api("POST", `${this.base()}/messages`, {
        body: { text },
        headers: { "X-Chat-Token": this.me.chat_token },
      });
      input.value = "";
      if (message && message.id !== undefined) this.add(message, false);
      this.scrollToEnd(true);
      this.wait(this.settings.slow_mode_seconds);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.me = null;
        store.remove(`chat:${this.eventId}`);
      }
      if (error instanceof ApiError && error.status === 429) this.wait(error.retryAfter || this.settings.slow_mode_seconds || 5);
      this.setError(this.explain(error, "post"));
    } finally {
      this.renderForms();
    }
  }

  explain(error, action) {
    if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
    const detail = error.detail;
    switch (error.status) {
      case 0:
        return detail;
      case 401:
        return `Your chat session has ended; join again to post. (${detail})`;
      case 404:
        return action === "join" ? "The chat is not open for this event." : detail;
      default:
        return detail;
    }
  }
}
