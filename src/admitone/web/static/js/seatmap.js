// The seat map: every seat of the venue drawn as an SVG circle at its coordinates, the stage at the top.
// Seats are focusable checkboxes (one tab stop for the whole map; arrow keys move between seats).

const SVG = "http://www.w3.org/2000/svg";
const ZOOMS = [1, 1.5, 2, 3, 4, 6];

export const STATE_WORDS = {
  free: "free",
  held: "held by someone else",
  sold: "sold",
  mine: "held by you",
};

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function median(values) {
  if (!values.length) return 1;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export class SeatMap {
  /**
   * @param {HTMLElement} host the scrolling container
   * @param {Array} seats seats of GET /events/{id}/seats: id, label, section_id, row, number, x, y, category
   * @param {{sectionNames: Map<number,string>, categoryIndex: Map<string,number>, onToggle: (seat) => void}} options
   */
  constructor(host, seats, { sectionNames, categoryIndex, onToggle }) {
    this.host = host;
    this.seats = new Map(seats.map((s) => [s.id, s]));
    this.sectionNames = sectionNames;
    this.categoryIndex = categoryIndex;
    this.onToggle = onToggle;
    this.nodes = new Map();
    this.states = new Map();
    this.selected = new Set();
    this.zoom = 0;
    this.focusId = null;
    this.buildRows();
    this.render();
  }

  /** Rows (seats of one section and row label) ordered from the audience's left, for arrow keys. */
  buildRows() {
    const rows = new Map();
    for (const seat of this.seats.values()) {
      const key = `${seat.section_id}\u0000${seat.row}`;
      if (!rows.has(key)) rows.set(key, []);
      rows.get(key).push(seat);
    }
    this.rowOf = new Map();
    const gaps = [];
    for (const row of rows.values()) {
      row.sort((a, b) => a.x - b.x || a.number - b.number);
      row.forEach((seat, i) => {
        this.rowOf.set(seat.id, { row, index: i });
        if (i > 0) gaps.push(Math.hypot(seat.x - row[i - 1].x, seat.y - row[i - 1].y));
      });
    }
    this.pitch = median(gaps.filter((g) => g > 0)) || 1;
  }

  render() {
    const all = [...this.seats.values()];
    const r = this.pitch * 0.42;
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    let maxY = -Infinity;
    for (const s of all) {
      minX = Math.min(minX, s.x);
      maxX = Math.max(maxX, s.x);
      minY = Math.min(minY, s.y);
      maxY = Math.max(maxY, s.y);
    }
    const width = Math.max(maxX - minX, this.pitch * 4);
    const pad = this.pitch * 1.5;
    const font = this.pitch * 1.1;
    const stageHeight = Math.max(this.pitch * 2.5, width * 0.04);
    const stageGap = this.pitch * 3;
    const top = minY - stageGap - stageHeight - pad;
    const viewWidth = width + 2 * pad;
    const viewHeight = maxY - top + pad;

    const root = svg("svg", {
      viewBox: `${minX - pad} ${top} ${viewWidth} ${viewHeight}`,
      role: "group",
      "aria-label": `Seat map, ${all.length} seats, stage at the top`,
      "aria-describedby": "map-help",
      preserveAspectRatio: "xMidYMin meet",
    });
    this.aspect = viewHeight / viewWidth;

    const stageWidth = Math.min(width * 0.5, this.pitch * 40);
    const cx = (minX + maxX) / 2;
    const stage = svg("g", { "aria-hidden": "true" });
    stage.append(
      svg("rect", {
        class: "stage",
        x: cx - stageWidth / 2,
        y: top + pad,
        width: stageWidth,
        height: stageHeight,
        rx: stageHeight / 4,
      }),
    );
    const stageLabel = svg("text", {
      class: "stage-label",
      x: cx,
      y: top + pad + stageHeight / 2,
      "font-size": Math.min(stageHeight * 0.5, font * 1.4),
    });
    stageLabel.textContent = "STAGE";
    stage.append(stageLabel);
    root.append(stage);

    // One group per section, so screen readers announce the section when focus moves into it.
    const bySection = new Map();
    for (const seat of all) {
      if (!bySection.has(seat.section_id)) bySection.set(seat.section_id, []);
      bySection.get(seat.section_id).push(seat);
    }
    for (const [sectionId, seats] of bySection) {
      const name = this.sectionNames.get(sectionId) || `Section ${sectionId}`;
      const group = svg("g", { role: "group", "aria-label": name });
      // The label goes above the seats in the middle of the section, facing the stage.
      const xs = seats.map((s) => s.x).sort((p, q) => p - q);
      const middle = (xs[0] + xs[xs.length - 1]) / 2;
      const nearest = seats.reduce((m, s) => Math.min(m, Math.abs(s.x - middle)), Infinity);
      const reach = nearest + this.pitch * 3;
      const labelY = seats.reduce((m, s) => (Math.abs(s.x - middle) <= reach ? Math.min(m, s.y) : m), Infinity);
      const label = svg("text", {
        class: "section-label",
        x: middle,
        y: labelY - this.pitch * 1.1,
        "font-size": font,
        "aria-hidden": "true",
      });
      label.textContent = name;
      group.append(label);
      for (const seat of seats) {
        const node = svg("circle", {
          class: "seat",
          cx: seat.x,
          cy: seat.y,
          r,
          role: "checkbox",
          tabindex: "-1",
          "aria-checked": "false",
          "data-seat-id": seat.id,
          "data-cat": this.categoryIndex.get(seat.category) ?? 0,
          "data-state": "free",
        });
        this.nodes.set(seat.id, node);
        this.states.set(seat.id, "free");
        this.updateLabel(seat.id);
        group.append(node);
      }
      root.append(group);
    }

    root.addEventListener("click", (event) => {
      const node = event.target.closest?.(".seat");
      if (!node) return;
      const id = Number(node.dataset.seatId);
      this.setFocus(id, false);
      this.onToggle(this.seats.get(id));
    });
    root.addEventListener("keydown", (event) => this.onKey(event));
    this.svg = root;
    this.host.replaceChildren(root);
    const first = all.slice().sort((a, b) => a.y - b.y || a.x - b.x)[0];
    if (first) this.setFocus(first.id, false);
  }

  updateLabel(id) {
    const seat = this.seats.get(id);
    const node = this.nodes.get(id);
    const state = this.states.get(id);
    const selected = this.selected.has(id) ? ", selected" : "";
    node.setAttribute("aria-label", `${seat.label}, category ${seat.category}, ${STATE_WORDS[state]}${selected}`);
    node.setAttribute("aria-disabled", state === "held" || state === "sold" ? "true" : "false");
  }

  /** state: "free" | "held" | "sold" | "mine" */
  setState(id, state) {
    const node = this.nodes.get(id);
    if (!node || this.states.get(id) === state) return;
    this.states.set(id, state);
    node.dataset.state = state;
    this.updateLabel(id);
  }

  state(id) {
    return this.states.get(id);
  }

  setSelected(id, selected) {
    const node = this.nodes.get(id);
    if (!node) return;
    if (selected) this.selected.add(id);
    else this.selected.delete(id);
    node.setAttribute("aria-checked", selected ? "true" : "false");
    this.updateLabel(id);
  }

  setFocus(id, move = true) {
    if (this.focusId !== null && this.nodes.has(this.focusId)) this.nodes.get(this.focusId).setAttribute("tabindex", "-1");
    this.focusId = id;
    const node = this.nodes.get(id);
    node.setAttribute("tabindex", "0");
    if (move) node.focus();
  }

  onKey(event) {
    const node = event.target.closest?.(".seat");
    if (!node) return;
    const id = Number(node.dataset.seatId);
    let next = null;
    switch (event.key) {
      case "Enter":
      case " ":
        event.preventDefault();
        this.onToggle(this.seats.get(id));
        return;
      case "ArrowLeft":
      case "ArrowRight": {
        const { row, index } = this.rowOf.get(id);
        const target = row[index + (event.key === "ArrowLeft" ? -1 : 1)];
        next = target ? target.id : null;
        break;
      }
      case "Home":
      case "End": {
        const { row } = this.rowOf.get(id);
        next = (event.key === "Home" ? row[0] : row[row.length - 1]).id;
        break;
      }
      case "ArrowUp":
      case "ArrowDown":
        next = this.nearestVertical(id, event.key === "ArrowUp" ? -1 : 1);
        break;
      default:
        return;
    }
    event.preventDefault();
    if (next !== null) this.setFocus(next);
  }

  /** The closest seat in the next row up (-1) or down (+1), preferring the same horizontal position. */
  nearestVertical(id, direction) {
    const from = this.seats.get(id);
    let best = null;
    let bestScore = Infinity;
    for (const seat of this.seats.values()) {
      const dy = (seat.y - from.y) * direction;
      if (dy < this.pitch * 0.5) continue;
      const score = dy + Math.abs(seat.x - from.x) * 2;
      if (score < bestScore) {
        bestScore = score;
        best = seat.id;
      }
    }
    return best;
  }

  /** Zoom steps: +1 in, -1 out, 0 back to the whole map. The map scrolls (and pans by touch) when zoomed. */
  zoomBy(step) {
    const level = step === 0 ? 0 : Math.min(ZOOMS.length - 1, Math.max(0, this.zoom + step));
    const host = this.host;
    const centreX = (host.scrollLeft + host.clientWidth / 2) / host.scrollWidth;
    const centreY = (host.scrollTop + host.clientHeight / 2) / host.scrollHeight;
    this.zoom = level;
    this.svg.style.width = `${ZOOMS[level] * 100}%`;
    host.scrollLeft = centreX * host.scrollWidth - host.clientWidth / 2;
    host.scrollTop = centreY * host.scrollHeight - host.clientHeight / 2;
    return { level, canZoomIn: level < ZOOMS.length - 1, canZoomOut: level > 0 };
  }

  /** How many seats of a section are free right now. */
  freeIn(sectionId) {
    let count = 0;
    for (const seat of this.seats.values()) {
      if (seat.section_id === sectionId && this.states.get(seat.id) === "free") count += 1;
    }
    return count;
  }
}
