/* A contact's journey as an SVG timeline: one lane per channel, sessions on a UTC time axis coloured by
   channel, conversions marked with a diamond, the first / converting / recent touch labelled above.
   Keyboard: each session is focusable; arrow keys, Home and End move between sessions in time order.
   Exposes window.Timeline = {draw, channelColour, formatDuration, parseStamp}. No library, nothing fetched. */
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  // GA4's default channel groups (SPEC section 5), colours that stay apart for common colour blindness
  const CHANNEL_COLOURS = {
    "Direct": "#5f6b7a", "Organic Search": "#1b9e77", "Paid Search": "#d95f02", "Organic Social": "#7570b3",
    "Paid Social": "#e7298a", "Email": "#1f78b4", "Referral": "#a6761d", "Display": "#e6ab02",
    "Organic Video": "#66a61e", "Paid Video": "#b2182b", "Affiliates": "#8c510a", "AI Assistants": "#01665e",
    "Cross-network": "#762a83", "Paid Shopping": "#c51b7d", "Organic Shopping": "#4d9221", "Paid Other": "#bf812d",
    "Audio": "#35978f", "SMS": "#9970ab", "Mobile Push Notifications": "#5aae61", "Unassigned": "#878787",
  };
  const SPARE = ["#003c30", "#543005", "#40004b", "#00441b", "#67001f", "#053061"];
  const LANE = 44, AXIS = 30, TOUCH_ROW = 34, PAD = 14, R = 7;

  function channelColour(channel) {
    if (CHANNEL_COLOURS[channel]) return CHANNEL_COLOURS[channel];
    let hash = 0;
    for (const ch of String(channel)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return SPARE[hash % SPARE.length];
  }

  function parseStamp(stamp) { return Date.parse(stamp.replace(" ", "T") + "Z"); }

  function formatDuration(seconds) {
    if (seconds < 60) return `${seconds} s`;
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h ? `${h} h ${m} min` : `${m} min ${s} s`;
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const STEPS = [3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3,
    30 * 86400e3, 91 * 86400e3, 182 * 86400e3, 365 * 86400e3];

  function ticks(t0, t1, maxTicks) {
    const step = STEPS.find((s) => (t1 - t0) / s <= maxTicks) || STEPS[STEPS.length - 1];
    const first = Math.ceil(t0 / step) * step;
    const out = [];
    for (let t = first; t <= t1; t += step) out.push(t);
    return { step, values: out };
  }

  function tickLabel(t, step) {
    const iso = new Date(t).toISOString();
    return step < 86400e3 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
  }

  function sessionLabel(s) {
    const parts = [`${s.timestamp} UTC`, s.channel, `${s.source} / ${s.medium}`];
    if (s.campaign !== "none") parts.push(`campaign ${s.campaign}`);
    parts.push(`landing page ${s.landing_page}`, `duration ${formatDuration(s.session_duration)}`);
    if (s.conversions.length) parts.push(`converted ${s.conversions.length} time${s.conversions.length > 1 ? "s" : ""}`);
    if (s.touches.length) parts.push(`${s.touches.join(" and ")} touch`);
    return parts.join(", ");
  }

  /* Draw `sessions` (the journey route's order) into `container`; onFocus(index) runs when a session is
     hovered or focused. Returns the marker elements in time order. */
  function draw(container, sessions, onFocus) {
    container.replaceChildren();
    const width = Math.max(container.clientWidth || 0, 280);
    const lanes = [...new Set(sessions.map((s) => s.channel))];
    const times = sessions.map((s) => parseStamp(s.timestamp));
    let t0 = Math.min(...times), t1 = Math.max(...sessions.map((s, i) => times[i] + s.session_duration * 1000));
    if (t1 - t0 < 3600e3) { const mid = (t0 + t1) / 2; t0 = mid - 1800e3; t1 = mid + 1800e3; }
    const span = t1 - t0; t0 -= span * 0.04; t1 += span * 0.04;
    const x = (t) => PAD + ((t - t0) / (t1 - t0)) * (width - 2 * PAD);
    const height = TOUCH_ROW + lanes.length * LANE + AXIS;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "timeline-svg",
      "aria-label": `Journey of ${sessions.length} session${sessions.length > 1 ? "s" : ""}, ${lanes.length} channel${lanes.length > 1 ? "s" : ""}` });
    svg.setAttribute("role", "group");

    lanes.forEach((lane, i) => {
      const top = TOUCH_ROW + i * LANE;
      svg.append(el("rect", { x: 0, y: top, width, height: LANE, class: i % 2 ? "lane odd" : "lane" }));
      svg.append(el("text", { x: PAD, y: top + 11, class: "lane-label" }, lane));
    });
    const axisY = TOUCH_ROW + lanes.length * LANE;
    svg.append(el("line", { x1: PAD, x2: width - PAD, y1: axisY, y2: axisY, class: "axis" }));
    const tk = ticks(t0, t1, Math.max(2, Math.floor(width / 110)));
    for (const t of tk.values) {
      svg.append(el("line", { x1: x(t), x2: x(t), y1: TOUCH_ROW, y2: axisY + 4, class: "grid" }));
      const label = tickLabel(t, tk.step), half = label.length * 3.3;  // keep labels inside the drawing
      const anchor = x(t) - half < 0 ? "start" : x(t) + half > width ? "end" : "middle";
      svg.append(el("text", { x: anchor === "start" ? 2 : anchor === "end" ? width - 2 : x(t), y: axisY + 18, class: "tick", "text-anchor": anchor }, label));
    }

    const markers = [];
    sessions.forEach((s, i) => {
      const cx = x(times[i]), cy = TOUCH_ROW + lanes.indexOf(s.channel) * LANE + LANE / 2 + 7;
      const g = el("g", { class: "session", tabindex: i === 0 ? "0" : "-1", role: "button", "aria-label": sessionLabel(s),
        "data-index": String(i), "data-channel": s.channel });
      const w = Math.max(0, x(times[i] + s.session_duration * 1000) - cx);
      if (w > 1) g.append(el("rect", { x: cx, y: cy - 2, width: w, height: 4, fill: channelColour(s.channel), class: "span" }));
      g.append(el("circle", { cx, cy, r: R, fill: channelColour(s.channel), class: "dot" }));
      if (s.conversions.length) {
        g.append(el("path", { d: `M${cx} ${cy - 19} l6 6 l-6 6 l-6 -6 z`, class: "conversion" }));
        g.classList.add("converted");
      }
      g.append(el("title", {}, sessionLabel(s)));
      svg.append(g);
      markers.push(g);
      if (s.touches.length) labelTouch(svg, s.touches, cx, cy, width);
    });

    function focusAt(i) {
      markers.forEach((m, j) => m.setAttribute("tabindex", j === i ? "0" : "-1"));
      markers[i].focus();
    }
    markers.forEach((g, i) => {
      g.addEventListener("focus", () => { markers.forEach((m) => m.classList.remove("active")); g.classList.add("active"); onFocus(i); });
      g.addEventListener("mouseenter", () => onFocus(i));
      g.addEventListener("click", () => focusAt(i));
      g.addEventListener("keydown", (ev) => {
        const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: markers.length - 1 }[ev.key];
        if (to === undefined) return;
        ev.preventDefault();
        focusAt(Math.min(markers.length - 1, Math.max(0, to)));
      });
    });
    container.append(svg);
    return markers;
  }

  const placed = new WeakMap();  // svg -> right edges of touch labels already placed, to avoid overlaps

  function labelTouch(svg, touches, cx, cy, width) {
    const text = touches.map((t) => `${t} touch`).join(" · ");
    const approx = text.length * 6.4;
    let left = Math.min(Math.max(2, cx - approx / 2), width - approx - 2);
    const row = placed.get(svg) || [];
    let y = 13;
    if (row.some((r) => left < r.right + 6 && r.y === y)) y = 27;
    row.push({ right: left + approx, y });
    placed.set(svg, row);
    svg.append(el("line", { x1: cx, x2: cx, y1: y + 3, y2: cy - R - (touches.includes("converting") ? 13 : 1), class: "touch-line" }));
    svg.append(el("text", { x: left, y, class: "touch-label" }, text));
  }

  window.Timeline = { draw, channelColour, formatDuration, parseStamp };
})();
