// One subject: why the risk is what it is, how it got there, and the analyst's two powers:
// override the level with a reason, reveal the identity on a stated purpose.
"use strict";

(() => {
  const { el } = RW;
  const SVG = "http://www.w3.org/2000/svg";
  const pseudonym = new URLSearchParams(location.search).get("p") || "";
  const message = document.getElementById("subject-message");
  const path = `/v1/subjects/${encodeURIComponent(pseudonym)}`;

  function svg(tag, attributes = {}, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
    return node;
  }

  const day = (iso) => RW.time(iso).slice(0, 10);

  // Score as a line over event time, the level as a band of colour below it, each event a dot
  // whose tooltip says what it did to the risk.
  function chart(history) {
    const width = 760; const height = 260;
    const left = 48; const right = 16; const top = 12; const band = 18; const bottom = 40;
    const plotHeight = height - top - bottom - band - 8;
    const times = history.map((p) => Date.parse(p.event_time));
    const first = Math.min(...times); const last = Math.max(...times);
    const span = last - first || 1;
    const maxScore = Math.max(1, ...history.map((p) => p.score)) * 1.1;
    const x = (t) => left + (history.length === 1 ? 0.5 : (t - first) / span) * (width - left - right);
    const y = (score) => top + plotHeight - (score / maxScore) * plotHeight;
    const bandY = top + plotHeight + 8;
    const picture = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title chart-desc", class: "chart",
    });
    const latest = history[history.length - 1];
    picture.append(
      svg("title", { id: "chart-title" }, `Risk timeline of ${pseudonym}`),
      svg("desc", { id: "chart-desc" }, `${history.length} events from ${day(history[0].event_time)} to `
        + `${day(latest.event_time)}; now ${latest.level}, score ${latest.score.toFixed(1)}.`),
    );
    for (const fraction of [0, 0.5, 1]) {
      const value = (maxScore / 1.1) * fraction;
      picture.append(
        svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }),
        svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, value.toFixed(0)),
      );
    }
    history.forEach((point, i) => {
      const end = i + 1 < history.length ? x(times[i + 1]) : width - right;
      picture.append(svg("rect", {
        x: x(times[i]), y: bandY, width: Math.max(1, end - x(times[i])), height: band, class: `band band-${point.level}`,
      }, svg("title", {}, `${point.level} from ${RW.time(point.event_time)}`)));
    });
    picture.append(svg("polyline", {
      points: history.map((p, i) => `${x(times[i])},${y(p.score)}`).join(" "), class: "score-line",
    }));
    history.forEach((point, i) => {
      picture.append(svg("circle", { cx: x(times[i]), cy: y(point.score), r: 4, class: `dot dot-${point.level}` },
        svg("title", {}, `${RW.time(point.event_time)}: ${point.level}, score ${point.score.toFixed(1)}. `
          + point.explanation)));
    });
    const axisY = bandY + band + 16;
    picture.append(
      svg("text", { x: left, y: axisY, class: "axis" }, day(history[0].event_time)),
      svg("text", { x: width - right, y: axisY, "text-anchor": "end", class: "axis" }, day(latest.event_time)),
      svg("text", { x: 4, y: bandY + 13, class: "axis" }, "level"),
    );
    return picture;
  }

  function summary(view) {
    const entries = [
      ["Level", RW.levelBadge(view.level)],
      ["Computed level", view.computed_level],
      ["Score", view.score.toFixed(1)],
      ["Region", RW.regionName(view.region)],
      ["Caseload", view.caseload || "–"],
      ["Assessed at (event time)", RW.timeElement(view.assessed_at)],
      ["Next review", RW.timeElement(view.next_review_at)],
      ["Policy", view.policy_version],
    ];
    if (view.override) {
      entries.push(["Override", `${view.override.level} by ${view.override.analyst}: ${view.override.reason}`]);
    }
    return entries.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
  }

  function show(view) {
    document.getElementById("explanation").textContent = view.explanation;
    document.getElementById("summary").replaceChildren(...summary(view));
    const events = new Map(view.events.map((e) => [e.event_id, e]));
    document.getElementById("contribution-rows").replaceChildren(...view.contributions.map((c) => el("tr", {},
      el("th", { scope: "row" }, c.factor.replaceAll("_", " ")),
      el("td", {}, c.value.toFixed(2)),
      el("td", {}, el("ul", { class: "plain" }, c.event_ids.map((id) => {
        const e = events.get(id);
        return el("li", {}, e ? [`${e.event_type} · ${e.agency} · `, RW.timeElement(e.event_time)] : id);
      }))),
    )));
    document.getElementById("history-rows").replaceChildren(...view.history.map((p) => el("tr", {},
      el("td", {}, RW.timeElement(p.event_time)), el("td", {}, RW.levelBadge(p.level)),
      el("td", {}, p.score.toFixed(1)), el("td", {}, p.explanation))));
    document.getElementById("chart").replaceChildren(view.history.length ? chart(view.history) : "No history yet.");
    for (const id of ["assessment", "timeline", "contributions"]) document.getElementById(id).hidden = false;
  }

  async function load() {
    try {
      const view = await RW.api(path);
      show(view);
      return view;
    } catch (error) {
      RW.showError(message, error);
      return null;
    }
  }

  function overrides(me) {
    const form = document.getElementById("override-form");
    const result = document.getElementById("override-result");
    document.getElementById("override").hidden = false;
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      const level = form.elements.level.value;
      try {
        const accepted = await RW.api(`${path}/override`, {
          method: "POST", body: { level, reason: form.elements.reason.value },
        });
        result.textContent = `Override to ${level} accepted; the assessment shows it once the stream has folded it in.`;
        // The projection follows the event within moments: look a few times, then leave it to a reload.
        for (let attempt = 0; attempt < 10; attempt += 1) {
          await new Promise((resolve) => { setTimeout(resolve, 500); });
          const view = await load();
          if (view && view.override && view.override.event_id === accepted.event_id) {
            result.textContent = `Override to ${level} by ${me.name} is in the assessment.`;
            return;
          }
        }
      } catch (error) {
        result.textContent = `Not overridden: ${error.message}`;
      }
    });
  }

  function reveal() {
    const form = document.getElementById("identity-form");
    const result = document.getElementById("identity-result");
    document.getElementById("identity").hidden = false;
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      try {
        const identity = await RW.api(`${path}/identity`, { purpose: form.elements.purpose.value.trim() });
        result.replaceChildren(`${identity.kind.replaceAll("_", " ")}: `,
          el("strong", { class: "identity" }, identity.identity_number));
      } catch (error) {
        result.textContent = `Not revealed: ${error.message}`;
      }
    });
  }

  document.getElementById("subject-name").textContent = pseudonym;
  RW.signedIn(["intelligence_analyst", "probation_officer", "admin"]).then(async (me) => {
    if (!(await load())) return;
    if (me.role === "intelligence_analyst") overrides(me);
    if (me.role === "intelligence_analyst" || me.role === "admin") reveal();
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
