// The sign-in form: posts /api/login, then goes back where the user was (a file of its own: the CSP allows no inline script).
const form = document.getElementById("login");
const query = new URLSearchParams(location.search);
document.getElementById("reason").hidden = query.get("reason") !== "expired";
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = JSON.stringify(Object.fromEntries(new FormData(form)));
  const answer = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"}, body});
  if (answer.ok) {
    const next = query.get("next") || "/";
    // only a path on this site: "//host" and "/\\host" would leave it
    location.assign(/^\/(?![\/\\])/.test(next) ? next : "/");
  } else {
    const detail = await answer.json().catch(() => ({}));
    document.getElementById("error").textContent = detail.error || `sign-in failed (${answer.status})`;
  }
});
