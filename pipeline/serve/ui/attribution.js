/* The attribution view: SPEC section 14's credit per channel (or source, medium, campaign, source / medium)
   for a date window, under every model side by side. One POST /api/v1/attribution per model; the table's
   bars share one scale so models compare at a glance. Uses window.ContactsApi from app.js. */
(function () {
  "use strict";
  const MODELS = [["first_touch", "First touch"], ["last_touch", "Last touch"], ["last_non_direct", "Last non-direct"],
    ["linear", "Linear"], ["position_based", "Position-based"], ["time_decay", "Time decay"], ["markov", "Markov"]];
  const $ = (id) => document.getElementById(id);
  const form = $("attribution-form");

  function readForm() {
    const request = {};
    for (const field of form.elements) {
      if (!field.name) continue;
      field.removeAttribute("aria-invalid");
      const value = field.value.trim();
      if (value) request[field.name] = value;
    }
    return request;
  }

  /* {value: {model: row}} and the values by total credit (most first, then by name). */
  function byValue(reports, by) {
    const table = new Map();
    for (const [model] of MODELS) {
      for (const row of reports[model].rows) {
        if (!table.has(row[by])) table.set(row[by], {});
        table.get(row[by])[model] = row;
      }
    }
    const total = (value) => MODELS.reduce((sum, [m]) => sum + ((table.get(value)[m] || {}).conversions || 0), 0);
    const values = [...table.keys()].sort((a, b) => total(b) - total(a) || String(a).localeCompare(String(b)));
    return { table, values };
  }

  function show(reports, request) {
    const by = request.by || "channel";
    const { table, values } = byValue(reports, by);
    const conversions = reports[MODELS[0][0]].conversions;
    const element = $("attribution-table");
    element.caption.textContent = `${conversions} conversion${conversions === 1 ? "" : "s"}; credited conversions per ${by.replace("_", " / ")} (share of all conversions)`;
    const head = element.tHead.rows[0];
    head.replaceChildren();
    for (const name of [by.replace("_", " / "), ...MODELS.map(([, label]) => label)]) {
      const th = document.createElement("th"); th.scope = "col"; th.textContent = name; head.append(th);
    }
    const largest = Math.max(1e-9, ...values.flatMap((v) => MODELS.map(([m]) => (table.get(v)[m] || {}).conversions || 0)));
    const body = element.tBodies[0];
    body.replaceChildren();
    for (const value of values) {
      const tr = document.createElement("tr");
      const th = document.createElement("th"); th.scope = "row"; th.textContent = value; tr.append(th);
      for (const [model] of MODELS) {
        const row = table.get(value)[model] || { conversions: 0, share_percent: 0, touches: 0 };
        const td = document.createElement("td");
        td.className = "credit num";
        td.textContent = `${row.conversions.toFixed(2)} (${row.share_percent.toFixed(1)} %)`;
        const bar = document.createElement("span");
        bar.className = "bar"; bar.style.width = `${(100 * row.conversions) / largest}%`;
        bar.setAttribute("aria-hidden", "true");
        td.append(bar);
        td.title = `${row.touches} touches on paths`;
        tr.append(td);
      }
      body.append(tr);
    }
    element.hidden = values.length === 0;
    $("attribution-status").textContent = values.length ? "" : "No conversions in this window.";
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const request = readForm();
    $("attribution-message").textContent = "";
    $("attribution-status").textContent = "Loading…";
    try {
      const answers = await Promise.all(MODELS.map(([model]) => ContactsApi.api("/api/v1/attribution", { ...request, model })));
      show(Object.fromEntries(MODELS.map(([model], i) => [model, answers[i]])), request);
    } catch (error) {
      $("attribution-status").textContent = "";
      $("attribution-table").hidden = true;
      if (error.status === 401) return;
      $("attribution-message").textContent = ContactsApi.explain(error);
      const field = error.field && form.elements[error.field];
      if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
    }
  });
})();
