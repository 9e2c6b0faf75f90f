// The analyst's queue: listed, filtered and sorted, updated live, and worked (acknowledge, assign, close).
"use strict";

(() => {
  const { el } = RW;
  const PRIORITY_NAMES = { 1: "urgent", 2: "high", 3: "routine" };
  const LIMIT = 200; // rows listed and shown
  const KEPT = 1000; // items kept in the page, live arrivals included: the oldest go first

  // Where the queue comes from. The page works on items; a source says how its API names them.
  // Cases (one per subject, alerts attached) replace alerts where the API offers /v1/cases.
  const fromAlert = (a) => ({
    id: a.alert_id, subject: a.subject, priority: a.priority, status: a.status, level: a.level_after,
    region: a.region, caseload: a.caseload, triggers: [a.trigger], explanation: a.explanation,
    assignee: a.assignee, at: a.raised_at, seq: a.seq,
  });
  const fromCase = (c) => ({
    id: c.case_id, subject: c.subject, priority: c.priority, status: c.status, level: c.level,
    region: c.region, caseload: c.caseload, triggers: c.triggers, explanation: c.explanation,
    assignee: c.assignee, at: c.updated_at, seq: c.seq,
  });
  const SOURCES = {
    alerts: {
      noun: "alerts", path: "/v1/alerts", liveEvent: "alert", from: fromAlert,
      list: async (query) => (await RW.api(`/v1/alerts?${query}`)).items,
      // One request per alert: those that succeed count even when another was taken meanwhile (409).
      acknowledgeMany: async (ids, note) => {
        const outcomes = await Promise.allSettled(ids.map(
          (id) => RW.api(`/v1/alerts/${id}/acknowledge`, { method: "POST", body: { note } }),
        ));
        const refused = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason.message);
        return { done: outcomes.filter((o) => o.status === "fulfilled").map((o) => o.value), refused };
      },
    },
    cases: {
      noun: "cases", path: "/v1/cases", liveEvent: "case", from: fromCase,
      list: async (query) => (await RW.api(`/v1/cases?${query}&sort=priority`)).cases,
      acknowledgeMany: async (ids, note) => ({
        done: (await RW.api("/v1/cases/acknowledge", { method: "POST", body: { case_ids: ids, note } })).cases,
        refused: [],
      }),
    },
  };

  async function chooseSource() {
    try {
      await RW.api("/v1/cases?limit=1");
      return SOURCES.cases;
    } catch (error) {
      if (error.status === 404) return SOURCES.alerts;
      throw error;
    }
  }

  const form = document.getElementById("filters");
  const rows = document.getElementById("queue-rows");
  const message = document.getElementById("queue-message");
  const liveStatus = document.getElementById("live-status");
  const bulk = document.getElementById("bulk-acknowledge");
  const selectAll = document.getElementById("select-all");
  const dialog = document.getElementById("step-dialog");
  const items = new Map();
  const arrived = new Map(); // from the live feed: kept across reloads of the list
  const selected = new Set();
  let source;
  const fresh = new Set(); // arrived live since the page opened: highlighted

  const filters = () => Object.fromEntries(new FormData(form).entries());

  function apiQuery(f) {
    const query = new URLSearchParams({ limit: String(LIMIT) });
    for (const name of ["status", "region", "trigger"]) if (f[name]) query.set(name, f[name]);
    if (f.since) query.set("since", RW.swedishMidnight(f.since));
    if (f.until) query.set("until", RW.swedishMidnight(f.until));
    return query;
  }

  // The live feed brings everything in scope; the page shows what the filters let through.
  function passes(item, f) {
    if (f.status && item.status !== f.status) return false;
    if (f.priority && item.priority !== Number(f.priority)) return false;
    if (f.region && item.region !== f.region) return false;
    if (f.trigger && !item.triggers.includes(f.trigger)) return false;
    if (f.since && item.at < RW.swedishMidnight(f.since)) return false;
    if (f.until && item.at >= RW.swedishMidnight(f.until)) return false;
    return true;
  }

  const ORDER = {
    priority: (a, b) => a.priority - b.priority || b.at.localeCompare(a.at) || b.seq - a.seq,
    newest: (a, b) => b.at.localeCompare(a.at) || b.seq - a.seq,
    oldest: (a, b) => a.at.localeCompare(b.at) || a.seq - b.seq,
  };

  // A busy feed brings many items a second: the table is drawn once per frame at most.
  let drawing = false;
  function scheduleRender() {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => { drawing = false; render(); });
  }

  function render() {
    const f = filters();
    const matching = [...items.values()].filter((item) => passes(item, f)).sort(ORDER[f.sort || "priority"]);
    const shown = matching.slice(0, LIMIT);
    rows.replaceChildren(...shown.map(row));
    document.getElementById("queue-caption").textContent = `${matching.length} ${source.noun} in your scope`
      + (matching.length > LIMIT ? `; the first ${LIMIT} are shown` : "");
    for (const id of [...selected]) if (!items.has(id)) selected.delete(id);
    updateSelection();
  }

  function row(item) {
    const open = item.status === "open" || item.status === "escalated";
    const closed = item.status === "closed";
    const label = `${item.triggers.join(", ")} for ${item.subject}`;
    return el("tr", { "data-id": item.id, class: fresh.has(item.id) ? "fresh" : null },
      el("td", {}, el("input", {
        type: "checkbox", "aria-label": `Select ${label}`, checked: selected.has(item.id), disabled: !open,
        onchange: (e) => { if (e.target.checked) selected.add(item.id); else selected.delete(item.id); updateSelection(); },
      })),
      el("td", {}, el("span", { class: `priority priority-${item.priority}` },
        `${item.priority} ${PRIORITY_NAMES[item.priority]}`)),
      el("td", {}, RW.timeElement(item.at)),
      el("td", {}, RW.subjectLink(item.subject)),
      el("td", {}, item.triggers.map((t) => t.replaceAll("_", " ")).join(", ")),
      el("td", {}, RW.levelBadge(item.level)),
      el("td", {}, [RW.regionName(item.region), item.caseload].filter(Boolean).join(" · ")),
      el("td", { class: `status status-${item.status}` }, item.status),
      el("td", {}, item.assignee || "–"),
      el("td", { class: "why" }, item.explanation),
      el("td", { class: "row-actions" },
        el("button", { type: "button", disabled: !open, onclick: () => acknowledge([item.id]),
          "aria-label": `Acknowledge ${label}` }, "Acknowledge"),
        el("button", { type: "button", disabled: closed, onclick: () => openStep(item, "assign"),
          "aria-label": `Assign ${label}` }, "Assign…"),
        el("button", { type: "button", disabled: closed, onclick: () => openStep(item, "close"),
          "aria-label": `Close ${label}` }, "Close…")),
    );
  }

  function updateSelection() {
    bulk.disabled = selected.size === 0;
    document.getElementById("selected-count").textContent = selected.size ? `${selected.size} selected` : "";
    const selectable = [...rows.querySelectorAll("input[type=checkbox]:not([disabled])")];
    selectAll.checked = selectable.length > 0 && selectable.every((box) => box.checked);
  }

  function keep(raw) {
    const item = source.from(raw);
    items.set(item.id, item);
    return item;
  }

  async function load() {
    message.replaceChildren();
    try {
      const listed = await source.list(apiQuery(filters()));
      items.clear();
      listed.forEach(keep);
      for (const [id, item] of arrived) if (!items.has(id)) items.set(id, item);
      render();
    } catch (error) {
      RW.showError(message, error);
    }
  }

  async function acknowledge(ids) {
    message.replaceChildren();
    try {
      const { done, refused } = await source.acknowledgeMany(ids, null);
      done.forEach(keep);
      ids.forEach((id) => selected.delete(id));
      render();
      RW.announce(`${done.length} acknowledged`);
      if (refused.length) RW.showError(message, new Error(`Not acknowledged: ${[...new Set(refused)].join("; ")}`));
    } catch (error) {
      RW.showError(message, error);
    }
  }

  let pending = null;
  function openStep(item, action) {
    pending = { item, action };
    document.getElementById("step-title").textContent = action === "assign" ? "Assign" : "Close with a note";
    document.getElementById("step-subject").textContent = `${item.triggers.join(", ")} · ${item.subject}`;
    document.getElementById("assignee-field").hidden = action !== "assign";
    const assignee = document.getElementById("step-assignee");
    const note = document.getElementById("step-note");
    assignee.required = action === "assign";
    note.required = action === "close";
    assignee.value = item.assignee || "";
    note.value = "";
    document.getElementById("step-error").hidden = true;
    dialog.showModal();
  }

  document.getElementById("step-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("step-form").addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const { item, action } = pending;
    const note = document.getElementById("step-note").value.trim() || null;
    const body = action === "assign" ? { assignee: document.getElementById("step-assignee").value, note } : { note };
    try {
      keep(await RW.api(`${source.path}/${item.id}/${action}`, { method: "POST", body }));
      dialog.close();
      render();
      RW.announce(`${action === "assign" ? "Assigned" : "Closed"}: ${item.subject}`);
    } catch (error) {
      const shown = document.getElementById("step-error");
      shown.textContent = error.message;
      shown.hidden = false;
    }
  });

  bulk.addEventListener("click", () => acknowledge([...selected]));
  selectAll.addEventListener("change", () => {
    for (const box of rows.querySelectorAll("input[type=checkbox]:not([disabled])")) {
      const id = box.closest("tr").dataset.id;
      box.checked = selectAll.checked;
      if (selectAll.checked) selected.add(id); else selected.delete(id);
    }
    updateSelection();
  });
  form.addEventListener("submit", (submitted) => { submitted.preventDefault(); load(); });
  form.addEventListener("change", (changed) => { if (changed.target.name === "sort") render(); });

  // The feed starts with what is raised after it opened; the list, read once it is open, has
  // everything before. Together they miss nothing.
  function live(opened) {
    RW.stream(`${source.path}/live`, {
      onState: (state) => {
        if (state === "live") opened();
        liveStatus.textContent = state === "live"
          ? `Live: new ${source.noun} appear here without reloading.`
          : "The live feed is interrupted; reconnecting…";
        liveStatus.dataset.state = state;
      },
      onEvent: (name, data) => {
        if (name !== source.liveEvent) return;
        const item = keep(data);
        arrived.set(item.id, item);
        fresh.add(item.id);
        for (const old of [...arrived.keys()].slice(0, Math.max(0, arrived.size - KEPT))) {
          arrived.delete(old);
          items.delete(old);
          fresh.delete(old);
        }
        scheduleRender();
        if (passes(item, filters())) {
          RW.announce(`New: priority ${item.priority}, ${item.triggers.join(", ")}, ${item.subject}`);
        }
      },
    });
  }

  RW.signedIn(["intelligence_analyst", "probation_officer", "admin"]).then(async () => {
    source = await chooseSource();
    let first = true;
    live(() => { if (first) { first = false; load(); } });
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
