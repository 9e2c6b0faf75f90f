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
  let previous = new Map();
  let previousAt = 0;

  // Prometheus text format: `name{label="value",...} number`. Only Riskwatch's own series.
  function samples(text) {
    const found = [];
    for (const line of text.split("\n")) {
      const match = /^(riskwatch_[a-z_]+)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$/.exec(line);
      if (!match) continue;
      const labels = match[2] ? match[2].replace(/"/g, "").split(",").join(", ") : "";
      found.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return found;
  }

  function shown(series) {
    return series.filter((s) => s.name.endsWith("_total") || s.name.endsWith("_count") || s.name.endsWith("_sum"));
  }

  async function refresh() {
    try {
      const status = await RW.api("/v1/operations/status");
      document.getElementById("status").replaceChildren(...Object.entries(STATUS_LABELS).flatMap(
        ([key, label]) => [el("dt", {}, label), el("dd", { "data-key": key }, String(status[key]))],
      ));
      const response = await fetch("/metrics");
      const now = performance.now();
      const series = shown(samples(await response.text()));
      const seconds = (now - previousAt) / 1000;
      document.getElementById("metric-rows").replaceChildren(...series.map((s) => {
        const key = `${s.name}{${s.labels}}`;
        const before = previous.get(key);
        const rate = before === undefined || s.name.endsWith("_sum") ? "–" : ((s.value - before) / seconds).toFixed(2);
        return el("tr", {}, el("td", {}, s.name), el("td", {}, s.labels || "–"),
          el("td", {}, Number.isInteger(s.value) ? String(s.value) : s.value.toFixed(3)), el("td", {}, rate));
      }));
      previous = new Map(series.map((s) => [`${s.name}{${s.labels}}`, s.value]));
      previousAt = now;
      document.getElementById("operations-updated").replaceChildren("Updated ", RW.timeElement(new Date().toISOString()),
        `; refreshed every ${REFRESH_MS / 1000} s.`);
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
