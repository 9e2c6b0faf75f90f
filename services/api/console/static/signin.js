// Sign-in: the token is checked against /v1/me before it is kept.
"use strict";

(() => {
  const reason = new URLSearchParams(location.search).get("reason");
  if (reason) {
    const notice = document.getElementById("reason");
    notice.textContent = reason;
    notice.hidden = false;
  }
  const form = document.getElementById("sign-in");
  const error = document.getElementById("sign-in-error");
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    error.hidden = true;
    const token = form.elements.token.value.trim();
    const response = await fetch("/v1/me", { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) {
      error.textContent = response.status === 401
        ? "The token was refused: it is unknown, revoked or expired."
        : `Sign-in failed: the server answered ${response.status}.`;
      error.hidden = false;
      form.elements.token.focus();
      return;
    }
    const me = await response.json();
    RW.remember(token, me);
    location.assign(RW.HOME[me.role]);
  });
})();
