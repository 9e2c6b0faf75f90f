// The probation officer's release watch: releases and furloughs coming up and just started.
"use strict";

(() => {
  const { el } = RW;
  const form = document.getElementById("releases-form");
  const message = document.getElementById("releases-message");

  const WHAT = (item) => (item.kind === "release"
    ? `release${item.release_kind ? ` (${item.release_kind.replaceAll("_", " ")})` : ""}`
    : "furlough");

  // Every subject listed is in the caseload, whose subject view the user may open.
  function rows(items) {
    if (!items.length) return [el("tr", {}, el("td", { colspan: 6 }, "None in this period."))];
    return items.map((item) => el("tr", {},
      el("td", {}, el("time", { datetime: item.date }, item.date)),
      el("td", {}, WHAT(item)),
      el("td", {}, RW.subjectLink(item.subject)),
      el("td", {}, RW.levelBadge(item.level)),
      el("td", {}, item.score.toFixed(1)),
      el("td", {}, item.caseload || "–"),
    ));
  }

  async function load() {
    message.replaceChildren();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) if (value) query.set(name, value);
    try {
      const watch = await RW.api(`/v1/releases?${query}`);
      document.getElementById("upcoming-rows").replaceChildren(...rows(watch.upcoming));
      document.getElementById("recent-rows").replaceChildren(...rows(watch.recent));
      RW.announce(`${watch.upcoming.length} upcoming, ${watch.recent.length} recent as of ${watch.as_of}`);
    } catch (error) {
      RW.showError(message, error);
    }
  }

  RW.signedIn(["probation_officer", "admin"]).then((me) => {
    document.getElementById("releases-as-of").value = RW.todayInSweden();
    const caseloads = document.getElementById("releases-caseload");
    for (const unit of me.role === "admin" ? [] : me.scope) caseloads.append(el("option", { value: unit }, unit));
    form.addEventListener("submit", (submitted) => { submitted.preventDefault(); load(); });
    load();
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
