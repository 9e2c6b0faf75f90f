// What every console page shares: the token, calls to the /v1 API, times in Sweden, DOM building.
"use strict";

const RW = (() => {
  const TOKEN_KEY = "riskwatch.token";
  const ME_KEY = "riskwatch.me";
  const ZONE = "Europe/Stockholm";
  const HOME = {
    intelligence_analyst: "/console/queue",
    probation_officer: "/console/releases",
    operator: "/console/operations",
    admin: "/console/admin",
  };
  // The police regions and their names, as the server knows them.
  const REGION_NAMES = JSON.parse(document.body.dataset.regions);

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // Kept for this tab only: closing it signs out.
  function remember(newToken, me) {
    sessionStorage.setItem(TOKEN_KEY, newToken);
    sessionStorage.setItem(ME_KEY, JSON.stringify(me));
  }

  function signOut(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ME_KEY);
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
    location.assign(`/console/${query}`);
  }

  // FastAPI says what is wrong as a string, or as a list naming each field.
  function detailText(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    return `the server answered ${status}`;
  }

  async function api(path, { method = "GET", body, purpose, signal, headers = {} } = {}) {
    const sent = { ...headers, Authorization: `Bearer ${token()}` };
    if (purpose) sent["X-Purpose"] = purpose;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, signal, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      signOut("The token was refused; sign in again.");
      throw new ApiError(401, "signed out");
    }
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, detailText(parsed, response.status));
    return parsed;
  }

  // The signed-in user, or off to the sign-in page. Pages say which roles they serve.
  async function signedIn(roles) {
    if (!token()) {
      signOut("Sign in to use the console.");
      throw new ApiError(401, "not signed in");
    }
    let me = JSON.parse(sessionStorage.getItem(ME_KEY) || "null");
    if (!me) {
      me = await api("/v1/me");
      sessionStorage.setItem(ME_KEY, JSON.stringify(me));
    }
    showUser(me);
    if (roles && !roles.includes(me.role)) {
      const main = document.getElementById("main");
      main.replaceChildren(
        el("h1", {}, "Not for your role"),
        el("p", {}, `A user with the role ${me.role} may not use this page. `,
          el("a", { href: HOME[me.role] }, "Go to your start page")),
      );
      throw new ApiError(403, "role");
    }
    return me;
  }

  function showUser(me) {
    const nav = document.getElementById("nav");
    for (const item of nav.querySelectorAll("[data-roles]")) {
      item.hidden = !item.dataset.roles.split(" ").includes(me.role);
    }
    nav.hidden = false;
    document.getElementById("who-name").textContent = `${me.name} (${me.role.replace("_", " ")})`;
    document.getElementById("who").hidden = false;
    document.getElementById("sign-out").addEventListener("click", () => signOut());
    const here = location.pathname;
    for (const link of nav.querySelectorAll("a")) {
      if (link.getAttribute("href") === here) link.setAttribute("aria-current", "page");
    }
  }

  // An element with attributes and children; text is always text, never parsed as markup.
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const parts = (date, options) => Object.fromEntries(
    new Intl.DateTimeFormat("sv-SE", { timeZone: ZONE, hourCycle: "h23", ...options })
      .formatToParts(date).map((p) => [p.type, p.value]),
  );

  // "2026-12-01 10:41 (UTC+01:00)": Swedish time with its offset, so nobody guesses the zone.
  function time(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    const p = parts(date, {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      timeZoneName: "longOffset",
    });
    const offset = p.timeZoneName === "GMT" ? "+00:00" : p.timeZoneName.replace("GMT", "");
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} (UTC${offset})`;
  }

  function timeElement(iso) {
    return el("time", { datetime: iso }, time(iso));
  }

  // A Swedish calendar day (YYYY-MM-DD) at midnight in Sweden, as an ISO instant for the API.
  function swedishMidnight(day) {
    const [year, month, date] = day.split("-").map(Number);
    let guess = Date.UTC(year, month - 1, date);
    for (let i = 0; i < 2; i += 1) {
      const p = parts(new Date(guess), {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
      guess -= shown - Date.UTC(year, month - 1, date);
    }
    return new Date(guess).toISOString();
  }

  function todayInSweden() {
    const p = parts(new Date(), { year: "numeric", month: "2-digit", day: "2-digit" });
    return `${p.year}-${p.month}-${p.day}`;
  }

  function levelBadge(level) {
    return el("span", { class: `level level-${level}` }, level);
  }

  function subjectLink(pseudonym) {
    return el("a", { href: `/console/subject?p=${encodeURIComponent(pseudonym)}`, class: "pseudonym" }, pseudonym);
  }

  const regionName = (code) => (code ? REGION_NAMES[code] || code : "withheld");

  function announce(text) {
    document.getElementById("announcer").textContent = text;
  }

  function showError(target, error) {
    target.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
  }

  // Server-Sent Events over fetch: EventSource cannot send the Authorization header. Reconnects
  // with Last-Event-ID, so the feed resumes where it stopped and nothing is missed or doubled.
  function stream(path, { onEvent, onState, purpose }) {
    let lastEventId = null;
    let retry = 2000;
    const controller = new AbortController();

    async function readOnce() {
      const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
      if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
      if (purpose) headers["X-Purpose"] = purpose;
      const response = await fetch(path, { headers, signal: controller.signal });
      if (response.status === 401) return signOut("The token was refused; sign in again.");
      if (!response.ok) throw new ApiError(response.status, `the live feed answered ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let fields = {};
      let opened = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        // The feed's opening comment comes once it knows where it starts: from then on it is live.
        if (!opened) {
          opened = true;
          onState("live");
        }
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (fields.data !== undefined) {
              if (fields.id !== undefined) lastEventId = fields.id;
              onEvent(fields.event || "message", JSON.parse(fields.data));
            }
            fields = {};
          } else if (!line.startsWith(":")) {
            const at = line.indexOf(":");
            const name = at < 0 ? line : line.slice(0, at);
            const data = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
            if (name === "retry") retry = Number(data) || retry;
            else if (name === "data") fields.data = fields.data === undefined ? data : `${fields.data}\n${data}`;
            else fields[name] = data;
          }
        }
      }
    }

    (async () => {
      while (!controller.signal.aborted) {
        try {
          await readOnce();
        } catch (error) {
          if (controller.signal.aborted) return;
          onState("reconnecting", error);
        }
        await new Promise((resolve) => { setTimeout(resolve, retry); });
      }
    })();
    return controller;
  }

  return {
    ApiError, HOME, REGION_NAMES, api, announce, el, levelBadge, regionName, remember, showError, signedIn, signOut,
    stream, subjectLink, swedishMidnight, time, timeElement, todayInSweden, token,
  };
})();
