/* The contacts UI: API key prompt, the /contacts filters (SPEC section 11) with paging, and the chosen
   contact's journey (POST /api/v1/journey) drawn by timeline.js. Everything is built with DOM calls and
   textContent (never innerHTML), so values from tracking data cannot inject markup. */
(function () {
  "use strict";
  const KEY = "contacts.apiKey";
  const $ = (id) => document.getElementById(id);
  const state = { offsets: [0], request: {}, summaries: new Map(), journey: null };

  // ---- the API --------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.error || body.message)) || `HTTP ${status}`);
      this.status = status; this.field = body && body.field;
    }
  }

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authentication": sessionStorage.getItem(KEY) || "" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* not JSON: keep the status */ }
    if (response.status === 401) { signOut("The server refused this API key (missing, wrong or revoked)."); throw new ApiError(401, data); }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function explain(error) {
    if (error.status === 429) return "Too many requests for this key: wait a moment and try again.";
    if (error.status === 503) return "The warehouse is unavailable; try again later.";
    return error.message;
  }

  // ---- the key --------------------------------------------------------------------------------------
  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $("app").hidden = true; $("forget-key").hidden = true; $("views").hidden = true; $("key-view").hidden = false;
    $("key-message").textContent = message || "";
    $("api-key").value = "";
    $("api-key").focus();
  }

  function signedIn() {
    $("key-view").hidden = true; $("app").hidden = false; $("forget-key").hidden = false; $("views").hidden = false;
    $("key-message").textContent = "";
  }

  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) { $("key-message").textContent = "Enter an API key."; return; }
    sessionStorage.setItem(KEY, key);
    $("api-key").value = "";
    signedIn();
    search(0, true).then((ok) => { if (ok) $("contacts-title").scrollIntoView({ block: "nearest" }); });
  });
  $("forget-key").addEventListener("click", () => signOut("Key forgotten."));

  // ---- filters and pages ----------------------------------------------------------------------------
  function readFilters() {
    const request = {};
    for (const field of $("filters").elements) {
      if (!field.name) continue;
      field.removeAttribute("aria-invalid");
      const value = field.value.trim();
      if (value) request[field.name] = value;
    }
    return request;
  }

  async function search(offset, fresh) {
    if (fresh) { state.request = readFilters(); state.offsets = [0]; }
    $("filter-message").textContent = "";
    $("status").textContent = "Loading…";
    try {
      const page = await api("/api/v1/contacts", { ...state.request, offset });
      showPage(page, offset);
      return true;
    } catch (error) {
      $("status").textContent = "";
      if (error.status === 401) return false;
      $("filter-message").textContent = explain(error);
      const field = error.field && $("filters").elements[error.field];
      if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
      return false;
    }
  }

  function showPage(page, offset) {
    const body = $("contacts").tBodies[0];
    body.replaceChildren();
    state.summaries.clear();
    const contacts = page.contacts || [];
    for (const contact of contacts) {
      state.summaries.set(contact.email, contact.summary);
      body.append(contactRow(contact));
    }
    $("contacts").hidden = contacts.length === 0;
    const pagination = page.pagination;
    if (!pagination) {
      $("status").textContent = page.message || "No contacts.";
      $("page-info").textContent = "";
      $("next-page").disabled = true; $("prev-page").disabled = true;
      return;
    }
    const n = state.offsets.length;
    $("status").textContent = `${contacts.length} contact${contacts.length === 1 ? "" : "s"} on page ${n}.`;
    const unit = state.request.emails ? "emails" : "matching sessions";
    $("page-info").textContent = `Page ${n} · ${pagination.records_processed} of ${pagination.total_records} ${unit} read`;
    $("next-page").disabled = !pagination.has_more;
    $("prev-page").disabled = n <= 1;
    state.next = pagination.records_processed;
    state.current = offset;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function contactRow(contact) {
    const s = contact.summary;
    const tr = document.createElement("tr");
    const who = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button"; button.className = "link"; button.textContent = contact.email;
    button.setAttribute("aria-label", `Show the journey of ${contact.email}`);
    button.addEventListener("click", () => openJourney(contact.email));
    const last = s.conversion_dates[s.conversion_dates.length - 1] || "";
    const more = document.createElement("div");
    more.className = "hint";
    more.textContent = `${s.first_touch.source} / ${s.first_touch.medium} · ${last.slice(0, 10)}`;
    who.append(button, more);
    tr.append(who, cell(String(s.total_sessions), "num"), cell(String(s.total_conversions), "num"));
    return tr;
  }

  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); search(0, true); });
  $("filters").addEventListener("reset", () => { $("filter-message").textContent = ""; });
  $("next-page").addEventListener("click", () => {
    state.offsets.push(state.next);
    search(state.next, false).then((ok) => { if (!ok) state.offsets.pop(); });
  });
  $("prev-page").addEventListener("click", () => {
    if (state.offsets.length <= 1) return;
    state.offsets.pop();
    search(state.offsets[state.offsets.length - 1], false);
  });

  // ---- the journey ----------------------------------------------------------------------------------
  async function openJourney(email) {
    $("journey-message").textContent = "";
    $("journey-title").textContent = `Journey of ${email}`;
    try {
      state.journey = await api("/api/v1/journey", { email });
    } catch (error) {
      if (error.status !== 401) $("journey-message").textContent = explain(error);
      return;
    }
    $("journey-empty").hidden = true;
    showFacts(state.summaries.get(email));
    drawJourney();
    $("journey-title").focus();
  }

  function showFacts(summary) {
    const facts = $("journey-facts");
    facts.replaceChildren();
    if (!summary) { facts.hidden = true; return; }
    const touch = (t) => `${t.source} / ${t.medium}`;
    const rows = [
      ["Sessions", summary.total_sessions], ["Conversions", summary.total_conversions],
      ["Conversion rate", `${summary.conversion_rate_percent} %`], ["Days to convert", summary.days_to_convert],
      ["Average session", Timeline.formatDuration(summary.avg_session_duration_seconds)],
      ["First touch", touch(summary.first_touch)], ["Converting touch", touch(summary.converting_touch)],
      ["Recent touch", touch(summary.recent_touch)],
    ];
    for (const [name, value] of rows) {
      const div = document.createElement("div");
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = String(value);
      div.append(dt, dd); facts.append(div);
    }
    facts.hidden = false;
  }

  function drawJourney() {
    const journey = state.journey;
    if (!journey) return;
    for (const id of ["timeline", "timeline-help", "legend", "session-detail", "journey-table-box"]) $(id).hidden = false;
    Timeline.draw($("timeline"), journey.sessions, (i) => showSession(journey.sessions[i]));
    showLegend(journey.sessions);
    showTable(journey.sessions);
    showSession(journey.sessions[0]);
  }

  function showLegend(sessions) {
    const legend = $("legend");
    legend.replaceChildren();
    for (const channel of new Set(sessions.map((s) => s.channel))) {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch"; swatch.style.background = Timeline.channelColour(channel);
      li.append(swatch, document.createTextNode(channel));
      legend.append(li);
    }
    const li = document.createElement("li");
    const diamond = document.createElement("span"); diamond.className = "diamond";
    li.append(diamond, document.createTextNode("conversion"));
    legend.append(li);
  }

  function sessionFacts(s) {
    const facts = [["Start", `${s.timestamp} UTC`], ["Channel", s.channel], ["Source", s.source], ["Medium", s.medium],
      ["Campaign", s.campaign], ["Landing page", s.landing_page], ["Duration", Timeline.formatDuration(s.session_duration)]];
    if (s.touches.length) facts.push(["Touch", s.touches.join(", ")]);
    for (const c of s.conversions) facts.push(["Conversion", `${c.timestamp} UTC on ${c.conversion_page} (${c.type || "?"} ${c.id || ""})`.trim()]);
    if (!s.own_device) facts.push(["Device", "another visitor's device (shared)"]);
    return facts;
  }

  function showSession(s) {
    const box = $("session-detail");
    box.replaceChildren();
    const dl = document.createElement("dl");
    for (const [name, value] of sessionFacts(s)) {
      const div = document.createElement("div");
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      div.append(dt, dd); dl.append(div);
    }
    box.append(dl);
  }

  function showTable(sessions) {
    const body = $("journey-table").tBodies[0];
    body.replaceChildren();
    for (const s of sessions) {
      const tr = document.createElement("tr");
      tr.append(cell(s.timestamp), cell(s.channel), cell(`${s.source} / ${s.medium}`), cell(s.campaign), cell(s.landing_page),
        cell(Timeline.formatDuration(s.session_duration), "num"), cell(s.touches.join(", ")),
        cell(s.conversions.map((c) => `${c.timestamp} ${c.conversion_page}`).join("; ")));
      body.append(tr);
    }
  }

  // ---- views ----------------------------------------------------------------------------------------
  function showView(name) {
    for (const button of document.querySelectorAll("#views .view")) {
      if (button.dataset.view === name) button.setAttribute("aria-current", "page"); else button.removeAttribute("aria-current");
    }
    $("contacts-view").hidden = name !== "contacts";
    $("journey-view").hidden = name !== "contacts";
    $("attribution-view").hidden = name !== "attribution";
    $("app").classList.toggle("single", name !== "contacts");
  }
  for (const button of document.querySelectorAll("#views .view")) button.addEventListener("click", () => showView(button.dataset.view));

  window.ContactsApi = { api, explain, cell };

  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawJourney, 150); });

  // ---- start ----------------------------------------------------------------------------------------
  if (sessionStorage.getItem(KEY)) { signedIn(); search(0, true); } else { $("api-key").focus(); }
})();
