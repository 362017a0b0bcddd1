// Shared by every page module: JSON API calls, DOM building, number formatting, who is signed in.

export const $ = (selector, root = document) => root.querySelector(selector);

/** The signed-in user (GET /api/me): user, role, expires_ms, anonymous, may (actions the role has). */
export const session = {user: null, role: null, expires_ms: null, anonymous: true, may: []};

/** Whether the user's role grants an action ("read", "mes-event", "publish", "rebirth", "write"); the server checks again. */
export const can = (action) => session.may.includes(action);

export function signIn(reason = "") {
  const next = encodeURIComponent(location.pathname + location.search + location.hash);
  location.assign(`/login?next=${next}${reason ? `&reason=${encodeURIComponent(reason)}` : ""}`);
}

/** fetch() a JSON API; a 401 (signed out, session expired) goes to the login page and back. */
export async function api(path, options = {}) {
  const answer = await fetch(path, {credentials: "same-origin", ...options});
  if (answer.status === 401) {
    signIn("expired");
    throw new Error("signed out");
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = new Error(body.error || `${path}: HTTP ${answer.status}`);
    error.status = answer.status;
    error.body = body;
    throw error;
  }
  return body;
}

/** POST JSON; answers {ok, status, body} instead of throwing, for forms that show refusals. */
export async function post(path, body) {
  const answer = await fetch(path, {
    method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (answer.status === 401) {
    signIn("expired");
    throw new Error("signed out");
  }
  return {ok: answer.ok, status: answer.status, body: await answer.json().catch(() => ({}))};
}

/** A refusal as one line: "field: reason; ..." from {detail: [...]} or {error}. */
export const refusal = (reply) =>
  reply.status === 403 ? `not allowed for role ${session.role}: ${reply.body.error || ""}` :
  reply.body.detail ? reply.body.detail.map((d) => `${d.field}: ${d.reason}`).join("; ") : reply.body.error || `HTTP ${reply.status}`;

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value; // through the CSSOM: the CSP refuses style attributes
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

export const svg = (tag, attributes = {}, ...children) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
};

export const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)} %`);

export const valueText = (info) => {
  if (!info || info.value === null || info.value === undefined) return "";
  if (typeof info.value === "number" && !Number.isInteger(info.value)) return String(Number(info.value.toPrecision(6)));
  return typeof info.value === "object" ? JSON.stringify(info.value) : String(info.value);
};

/** A duration: "4.2 s", "35 s", "4.5 min", "2.3 h"; ``digits`` 0 gives whole seconds and minutes (ages ticking in place). */
export function duration(totalSeconds, digits = 1) {
  const s = Math.max(0, totalSeconds);
  if (s < 120) return `${s < 10 && digits ? s.toFixed(digits) : Math.round(s)} s`;
  if (s < 7200) return `${(s / 60).toFixed(digits)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Load who is signed in, show it, and watch the session's end. */
export async function loadSession() {
  Object.assign(session, await api("/api/me"));
  $("#who").textContent = session.anonymous ? `not signed in: role ${session.role}` : `${session.user} (${session.role})`;
  if (!session.anonymous) $("#who").append(" ", el("button", {type: "button", id: "logout", onclick: logout}, "sign out"));
  if (session.warning) document.body.prepend(el("p", {class: "banner", id: "anonymous"}, session.warning));
  for (const node of document.querySelectorAll("[data-needs]")) node.hidden = !can(node.dataset.needs);
  if (session.expires_ms) watchExpiry(session.expires_ms);
}

async function logout() {
  await fetch("/api/logout", {method: "POST", credentials: "same-origin"});
  location.assign("/login");
}

function watchExpiry(expiresMs) {
  const warnAt = expiresMs - 5 * 60_000;
  const warn = () => {
    if ($("#expiry")) return;
    document.body.prepend(el("p", {class: "banner", id: "expiry"}, "Your session ends in less than 5 minutes: ",
      el("button", {type: "button", onclick: () => signIn("expired")}, "sign in again")));
  };
  // setTimeout's limit is about 24.8 days; sessions are hours
  setTimeout(warn, Math.max(0, warnAt - Date.now()));
  setTimeout(() => signIn("expired"), Math.max(0, expiresMs - Date.now()));
}

/** A number with thousands separators ("1,234"), the same in every locale. */
export const count = (value) => new Intl.NumberFormat("en").format(value ?? 0);

/** "3 s ago" for a time in Unix ms, given the server's clock now. */
export const ago = (thenMs, nowMs) => (thenMs ? `${duration((nowMs - thenMs) / 1000, 0)} ago` : "");

/** Bytes as `xxd` shows them: offset | 16 bytes in hex | ASCII, one line each. */
export function hexDump(bytes) {
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    const hex = [...row].map((b, i) => (i === 8 ? " " : "") + b.toString(16).padStart(2, "0")).join(" ");
    const ascii = String.fromCharCode(...[...row].map((b) => (b >= 0x20 && b < 0x7f ? b : 0x2e)));
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(48)}  ${ascii}`);
  }
  return lines.join("\n");
}

/** Base64 (as the APIs send raw bytes) to a Uint8Array. */
export const fromBase64 = (text) => Uint8Array.from(atob(text || ""), (c) => c.charCodeAt(0));

/**
 * An EventSource that follows the session: on an error it asks /api/me (a 401 goes to the login
 * page, as api() does); otherwise the browser reconnects, or, once it gave up, we open it again.
 * `marker` (an element) is shown while the stream is down. Answers {close()}.
 */
export function liveStream(url, handlers, marker = null) {
  let source = null;
  let closed = false;
  const open = () => {
    source = new EventSource(url);
    for (const [name, handle] of Object.entries(handlers)) source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    source.addEventListener("open", () => { if (marker) marker.hidden = true; });
    source.addEventListener("error", async () => {
      if (closed) return;
      if (marker) marker.hidden = false;
      try {
        await api("/api/me");
      } catch (error) {
        if (error.message === "signed out") return; // api() is on its way to the login page
      }
      // a non-200 answer (e.g. a hub restarting) closes an EventSource for good: open it again
      if (!closed && source.readyState === EventSource.CLOSED) setTimeout(() => closed || open(), 2000);
    });
  };
  open();
  return {close() { closed = true; source.close(); }};
}
