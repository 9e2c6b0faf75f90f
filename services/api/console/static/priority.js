// The region's subjects ranked by score, with the components the score is made of.
"use strict";

(() => {
  const { el } = RW;
  const form = document.getElementById("priority-form");
  const select = document.getElementById("priority-region");
  const message = document.getElementById("priority-message");
  const COMPONENTS = ["recency", "frequency", "gravity", "victims", "escalation", "markers"];

  async function load() {
    message.replaceChildren();
    try {
      const list = await RW.api(`/v1/priority?${new URLSearchParams({ region: select.value, limit: "100" })}`);
      document.getElementById("priority-caption").textContent =
        `${list.total} subjects of ${RW.regionName(list.region)} ranked by score`
        + (list.total > list.items.length ? ` (the first ${list.items.length})` : "");
      document.getElementById("priority-rows").replaceChildren(...list.items.map((item) => el("tr", {},
        el("td", {}, item.rank),
        el("td", {}, RW.subjectLink(item.subject)),
        el("td", {}, RW.levelBadge(item.level), item.overridden ? " (override)" : ""),
        el("td", {}, item.score.toFixed(1)),
        COMPONENTS.map((name) => el("td", {}, item[name].toFixed(2))),
        el("td", {}, item.caseload || "–"),
        el("td", {}, RW.timeElement(item.assessed_at)),
      )));
    } catch (error) {
      RW.showError(message, error);
    }
  }

  RW.signedIn(["intelligence_analyst", "admin"]).then((me) => {
    const national = me.role === "admin" || me.scope.includes("national");
    const regions = national ? Object.keys(RW.REGION_NAMES) : me.scope;
    select.replaceChildren(...regions.map((code) => el("option", { value: code }, RW.regionName(code))));
    form.addEventListener("submit", (submitted) => { submitted.preventDefault(); load(); });
    load();
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
