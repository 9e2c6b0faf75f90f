// The admin's view: who is signed in, and the access log with its filters.
"use strict";

(() => {
  const { el } = RW;
  const form = document.getElementById("log-form");
  const message = document.getElementById("log-message");

  async function load() {
    message.replaceChildren();
    const query = new URLSearchParams({ limit: "200" });
    for (const [name, value] of new FormData(form).entries()) {
      if (!value.trim()) continue;
      query.set(name, name === "since" || name === "until" ? RW.swedishMidnight(value) : value.trim());
    }
    try {
      const page = await RW.api(`/v1/access-log?${query}`);
      document.getElementById("log-caption").textContent =
        `${page.total} entries, newest first${page.total > page.items.length ? ` (the first ${page.items.length})` : ""}`;
      document.getElementById("log-rows").replaceChildren(...page.items.map((entry) => el("tr", {},
        el("td", {}, RW.timeElement(entry.at)),
        el("td", {}, entry.actor),
        el("td", {}, entry.role),
        el("td", {}, entry.action),
        el("td", {}, el("code", {}, entry.endpoint)),
        el("td", {}, entry.subjects.length > 3
          ? `${entry.subjects.slice(0, 3).join(", ")} and ${entry.subjects.length - 3} more`
          : entry.subjects.join(", ") || "–"),
        el("td", {}, entry.purpose),
      )));
    } catch (error) {
      RW.showError(message, error);
    }
  }

  RW.signedIn(["admin"]).then((me) => {
    document.getElementById("users-me").textContent = `Signed in as ${me.name} (${me.role}).`;
    form.addEventListener("submit", (submitted) => { submitted.preventDefault(); load(); });
    load();
  }).catch((error) => { if (!(error instanceof RW.ApiError)) RW.showError(message, error); });
})();
