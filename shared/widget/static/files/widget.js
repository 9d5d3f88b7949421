/*! Hookgate web chat widget. Embed with one tag:
 *    <script src="https://YOUR-API/widget.js" async></script>
 *  Options (attributes of that tag): data-title, data-open="true" (start open),
 *  data-target="#selector" (render inside that element instead of a floating panel),
 *  data-api (the API's base URL; default: where widget.js came from).
 *  No dependencies; works in any current browser. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__hookgateWidget) return;
  window.__hookgateWidget = true;

  var api = (script.getAttribute("data-api") || script.src.replace(/\/widget\.js(\?.*)?$/, "")).replace(/\/+$/, "");
  var title = script.getAttribute("data-title") || "Chat with us";
  var inline = script.getAttribute("data-target");
  var storeKey = "hookgate-widget:" + api;
  var session = null; // {token, session_id, thread_id, expires_at (ms)}
  var es = null, lastId = "", renewTimer = 0, backoff = 1000, uid = 0;
  var seen = {}; // message id -> element

  // ---- DOM (in a shadow root, so the site's CSS and ours never mix) ----
  var host = document.createElement("div");
  host.id = "hookgate-widget";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:999px;padding:14px 20px;" +
    "background:#1d4ed8;color:#fff;font-size:16px;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:370px;max-width:calc(100vw - 40px);" +
    "height:520px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#111827;" +
    "border:1px solid #d1d5db;border-radius:14px;box-shadow:0 10px 30px rgba(0,0,0,.2);overflow:hidden}" +
    ".panel.inline{position:static;width:100%;max-width:none;height:100%;min-height:360px;max-height:none;box-shadow:none}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 16px;background:#1d4ed8;color:#fff}" +
    "h2{margin:0;font-size:17px;font-weight:600}" +
    ".close{border:0;background:transparent;color:#fff;font-size:24px;line-height:1;cursor:pointer;padding:4px 8px;border-radius:6px}" +
    "ol{list-style:none;margin:0;padding:12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px;background:#f9fafb}" +
    "li{max-width:85%;padding:9px 12px;border-radius:12px;font-size:15px;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere}" +
    "li.user{align-self:flex-end;background:#1d4ed8;color:#fff;border-bottom-right-radius:4px}" +
    "li.assistant{align-self:flex-start;background:#fff;color:#111827;border:1px solid #e5e7eb;border-bottom-left-radius:4px}" +
    "li.note{align-self:center;background:transparent;color:#4b5563;font-size:13px}" +
    "li.pending{opacity:.7}li.failed{background:#991b1b}" +
    ".status{min-height:20px;margin:0;padding:2px 14px;font-size:13px;color:#4b5563;background:#f9fafb}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;font-size:16px;padding:9px 10px;border:1px solid #9ca3af;border-radius:10px;min-height:42px;max-height:120px;color:#111827}" +
    ".send{border:0;border-radius:10px;padding:0 16px;background:#1d4ed8;color:#fff;font-size:15px;font-weight:600;cursor:pointer}" +
    ".send:disabled{background:#6b7280;cursor:default}" +
    "button:focus-visible,textarea:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}" +
    "@media (max-width:480px){.panel:not(.inline){right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}" +
    ".launcher{right:12px;bottom:12px}}" +
    "</style>" +
    '<button class="launcher" type="button" aria-expanded="false" aria-controls="hg-panel">Chat</button>' +
    '<section class="panel" id="hg-panel" role="region" aria-labelledby="hg-title" hidden>' +
    '<header><h2 id="hg-title"></h2><button class="close" type="button" aria-label="Close chat">\u00d7</button></header>' +
    '<ol role="log" aria-live="polite" aria-label="Conversation"></ol>' +
    '<p class="status" role="status" aria-live="polite"></p>' +
    '<form><label class="sr" for="hg-input">Message</label>' +
    '<textarea id="hg-input" rows="1" placeholder="Type a message\u2026" autocomplete="off" maxlength="4000"></textarea>' +
    '<button class="send" type="submit">Send</button></form></section>';

  var $ = function (sel) { return root.querySelector(sel); };
  var launcher = $(".launcher"), panel = $(".panel"), list = $("ol"), status = $(".status");
  var form = $("form"), input = $("textarea"), sendBtn = $(".send");
  $("h2").textContent = title;

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) { input.focus(); list.scrollTop = list.scrollHeight; }
  }
  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  $(".close").addEventListener("click", function () { setOpen(false); launcher.focus(); });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !inline) { setOpen(false); launcher.focus(); }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(e); }
  });
  form.addEventListener("submit", submit);

  if (inline) {
    var target = document.querySelector(inline);
    (target || document.body).appendChild(host);
    panel.classList.add("inline");
    launcher.hidden = true;
    $(".close").hidden = true;
    panel.hidden = false;
  } else {
    document.body.appendChild(host);
    if (script.getAttribute("data-open") === "true") setOpen(true);
  }

  // ---- messages ----
  function show(id, role, text, cls) {
    var li = id && seen[id];
    if (!li) {
      li = document.createElement("li");
      if (id) { seen[id] = li; li.setAttribute("data-id", id); }
      list.appendChild(li);
    }
    li.className = role + (cls ? " " + cls : "");
    li.textContent = text; // text only: never HTML from the network
    if (role !== "note") { // who said it, for screen readers
      var who = document.createElement("span");
      who.className = "sr";
      who.textContent = role === "user" ? "You: " : "Assistant: ";
      li.insertBefore(who, li.firstChild);
    }
    var near = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (near || role === "user") list.scrollTop = list.scrollHeight;
    return li;
  }
  function note(text) { show("", "note", text); }
  function say(text) { status.textContent = text; }

  // ---- session (a short-lived signed token, renewed while valid; kept across reloads) ----
  function load() {
    try { session = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { session = null; }
    if (session && !(session.expires_at > Date.now() + 5000)) session = null;
  }
  function save(s) {
    session = { token: s.token, session_id: s.session_id, thread_id: s.thread_id, expires_at: Date.parse(s.expires_at) };
    try { localStorage.setItem(storeKey, JSON.stringify(session)); } catch (e) { /* private mode: this page only */ }
    schedule();
  }
  // Renew at half-life, then reopen the stream with the new token from where it was.
  function schedule() {
    clearTimeout(renewTimer);
    renewTimer = setTimeout(function () { openSession(true).then(connect, retryLater); },
      Math.max(10000, (session.expires_at - Date.now()) / 2));
  }
  function call(method, path, body, auth) {
    var headers = { "content-type": "application/json" };
    if (auth && session) headers.authorization = "Bearer " + session.token;
    return fetch(api + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : "{}", credentials: "omit" })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; }); });
  }
  // openSession(true) renews the current session; when it has lapsed, a new one starts.
  function openSession(renew) {
    return call("POST", "/v1/web/session", null, renew && session).then(function (r) {
      if (r.status === 401 && renew) { session = null; reset(); return openSession(false); }
      if (r.status !== 200 && r.status !== 201) throw new Error((r.body.error && r.body.error.message) || "HTTP " + r.status);
      save(r.body);
    });
  }
  function reset() {
    lastId = ""; seen = {};
    while (list.firstChild) list.removeChild(list.firstChild);
    note("A new conversation has started.");
  }

  // ---- the stream: EventSource reconnects by itself after each window (Last-Event-ID) ----
  function connect() {
    if (es) es.close();
    var url = api + "/v1/web/stream?token=" + encodeURIComponent(session.token) + (lastId ? "&since=" + encodeURIComponent(lastId) : "");
    var src = es = new EventSource(url);
    src.addEventListener("open", function () { backoff = 1000; if (status.textContent === "Reconnecting\u2026") say(""); });
    src.addEventListener("message", function (e) {
      lastId = e.lastEventId || lastId;
      var m; try { m = JSON.parse(e.data); } catch (x) { return; }
      if (!m.id || !m.role) return;
      show(m.id, m.role === "user" ? "user" : "assistant", m.text);
      if (m.role === "assistant") say("");
    });
    src.addEventListener("run", function (e) {
      lastId = e.lastEventId || lastId;
      var r; try { r = JSON.parse(e.data); } catch (x) { return; }
      if (r.status === "queued" || r.status === "running") say("The assistant is typing\u2026");
      else if (r.status === "waiting_approval") say("Waiting for a person to approve\u2026");
      else if (r.status === "failed") { say(""); note("Sorry, something went wrong. Please try again."); }
      else say("");
    });
    src.addEventListener("error", function () {
      // After each window the browser reconnects by itself; CLOSED means it gave up (an HTTP
      // error such as an expired token): renew the session and open the stream again.
      if (src === es && src.readyState === EventSource.CLOSED) retryLater();
    });
  }
  function retryLater() {
    say("Reconnecting\u2026");
    var wait = backoff; backoff = Math.min(backoff * 2, 30000);
    setTimeout(function () { openSession(true).then(connect, retryLater); }, wait);
  }

  function submit(e) {
    if (e) e.preventDefault();
    var text = input.value.trim();
    if (!text || !session) return;
    input.value = "";
    var clientId = "c" + Date.now().toString(36) + (++uid) + Math.random().toString(36).slice(2, 8);
    var li = show("", "user", text, "pending");
    send(text, clientId, li, true);
  }
  function send(text, clientId, li, retry) {
    call("POST", "/v1/web/messages", { text: text, client_id: clientId }, true).then(function (r) {
      if (r.status === 401 && retry) return openSession(true).then(function () { connect(); send(text, clientId, li, false); });
      if (r.status !== 202) throw new Error((r.body.error && r.body.error.message) || "HTTP " + r.status);
      var id = r.body.message_id;
      if (seen[id] && seen[id] !== li) { li.remove(); return; } // the stream showed it first
      seen[id] = li; li.setAttribute("data-id", id); li.classList.remove("pending");
      say("The assistant is typing\u2026");
    }).catch(function (err) {
      li.classList.remove("pending"); li.classList.add("failed");
      li.textContent = text + "\n(not sent: " + err.message + ")";
    });
  }

  // A stored session is renewed on every page load (or replaced, when it has lapsed).
  load();
  openSession(!!session).then(connect, function (err) {
    say("Chat is unavailable: " + err.message);
    sendBtn.disabled = true;
  });
})();
