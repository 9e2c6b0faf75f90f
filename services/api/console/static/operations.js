// Stream health for operators: counts from /v1/operations/status and the API's /metrics, no person in any.
"use strict";

(() => {
  const { el } = RW;
  const REFRESH_MS = 5000;
  const message = document.getElementById("operations-message");
  const STATUS_LABELS = {
    outbox_backlog: "Outbox backlog (not yet published)",
    dead_letters: "Dead letters kept",
    dead_letters_last_hour: "Dead letters in the last hour",
    unacknowledged_alerts: "Alerts not acknowledged",
    escalated_alerts: "Escalated alerts",
  };
  let previous = null; // { at, totals } of the last refresh: rates are the difference

  // Prometheus text format, `name{label="value",...} number`: Riskwatch's own series only.
  function samples(text) {
    const found = [];
    for (const line of text.split("\n")) {
      const match = /^(riskwatch_[a-z_]+)(?:\{(.*)\})? ([0-9.eE+-]+)$/.exec(line);
      if (!match) continue;
      const labels = Object.fromEntries([...(match[2] || "").matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      found.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return found;
  }

  // Sum a series by a key made of its labels; rows with nothing yet are left out.
  function byKey(series, name, key) {
    const totals = new Map();
    for (const s of series) if (s.name === name) totals.set(key(s.labels), (totals.get(key(s.labels)) || 0) + s.value);
    return new Map([...totals].filter(([, value]) => value > 0));
  }

  function rateRows(id, totals, seconds) {
    const rows = [...totals].map(([key, value]) => {
      const before = previous && previous.totals.get(`${id}:${key}`);
      const rate = before === undefined || !seconds ? "–" : `${((value - before) / seconds).toFixed(2)}/s`;
      return el("tr", {}, el("td", {}, key), el("td", {}, String(value)), el("td", {}, rate));
    });
    document.getElementById(`${id}-rows`).replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3 }, "None since this process started."))]));
  }

  function latencyRows(series) {
    const rows = [];
    const stages = byKey(series, "riskwatch_batch_duration_seconds_count", (l) => l.stage);
    const sums = byKey(series, "riskwatch_batch_duration_seconds_sum", (l) => l.stage);
    for (const [stage, count] of stages) {
      rows.push([`${stage} batch`, count, `${((sums.get(stage) || 0) / count * 1000).toFixed(1)} ms mean`]);
    }
    for (const [name, label] of [["ingest_to_projection", "ingest to projection"], ["ingest_to_alert", "ingest to alert"]]) {
      const count = byKey(series, `riskwatch_${name}_seconds_count`, () => "").get("");
      const sum = byKey(series, `riskwatch_${name}_seconds_sum`, () => "").get("") || 0;
      if (count) rows.push([label, count, `${(sum / count).toFixed(3)} s mean`]);
    }
    document.getElementById("latency-rows").replaceChildren(...(rows.length
      ? rows.map((cells) => el("tr", {}, cells.map((cell) => el("td", {}, String(cell)))))
      : [el("tr", {}, el("td", { colspan: 3 }, "Not measured in this process."))]));
  }

  function lagAndLatency(status) {
    const rows = Object.entries(status.consumer_lag).flatMap(([group, topics]) => Object.entries(topics).map(
      ([topic, behind]) => el("tr", {}, el("td", {}, group), el("td", {}, topic), el("td", {}, String(behind)))));
    document.getElementById("lag-rows").replaceChildren(...(rows.length
      ? rows : [el("tr", {}, el("td", { colspan: 3 }, "No stage has committed a position yet."))]));
    const latency = status.alert_latency_last_hour;
    const seconds = (value) => (value === null ? "none" : `${value.toFixed(2)} s`);
    document.getElementById("alert-latency").replaceChildren(
      el("dt", {}, "Alerts in the last hour"), el("dd", {}, String(latency.alerts)),
      el("dt", {}, "Gateway to alert, median"), el("dd", { "data-key": "p50" }, seconds(latency.p50_seconds)),
      el("dt", {}, "Gateway to alert, 95th percentile"), el("dd", {}, seconds(latency.p95_seconds)),
      el("dt", {}, "Gateway to alert, slowest"), el("dd", {}, seconds(latency.max_seconds)));
  }

  async function refresh() {
    try {
      const status = await RW.api("/v1/operations/status");
      document.getElementById("status").replaceChildren(...Object.entries(STATUS_LABELS).flatMap(
        ([key, label]) => [el("dt", {}, label), el("dd", { "data-key": key }, String(status[key]))],
      ));
      lagAndLatency(status);
      const response = await fetch("/metrics");
      const at = performance.now();
      const series = samples(await response.text());
      const seconds = previous ? (at - previous.at) / 1000 : 0;
      const tables = {
        ingest: byKey(series, "riskwatch_ingest_submissions_total", (l) => l.outcome),
        published: byKey(series, "riskwatch_events_out_total", (l) => l.topic),
        "dead-letters": byKey(series, "riskwatch_dead_letters_total", (l) => `${l.stage}: ${l.reason.replaceAll("_", " ")}`),
        alerts: byKey(series, "riskwatch_alerts_total", (l) => l.trigger.replaceAll("_", " ")),
      };
      for (const [id, totals] of Object.entries(tables)) rateRows(id, totals, seconds);
      latencyRows(series);
      previous = { at, totals: new Map(Object.entries(tables).flatMap(
        ([id, totals]) => [...totals].map(([key, value]) => [`${id}:${key}`, value]))) };
      document.getElementById("operations-updated").replaceChildren("Updated ",
        RW.timeElement(new Date().toISOString()), `; refreshed every ${REFRESH_MS / 1000} s.`);
      message.replaceChildren();
    } catch (error) {
      RW.showError(message, error);
    }
  }

  RW.signedIn(["operator", "admin"]).then(() => {
    refresh();
    setInterval(refresh, REFRESH_MS);
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
