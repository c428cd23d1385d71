/*
 * Room page live chat. Requires centrifuge-js (global `Centrifuge`, vendor/centrifuge.js).
 *
 * Connects to the same-origin Centrifugo WebSocket endpoint without a token: Centrifugo's
 * connect proxy authenticates the connection with the forwarded Django session cookie.
 * Subscribes to the room channel; each publication's data is the message dict produced by
 * the publish proxy: {id, room, user, text, created_at}. Sends with sub.publish({text}).
 */
(function () {
  "use strict";

  var configEl = document.getElementById("chat-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent);

  var list = document.getElementById("messages");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var sendButton = document.getElementById("chat-send");
  var statusEl = document.getElementById("chat-status");

  // Ids already shown (server-rendered history), so live/recovered publications don't duplicate.
  var seen = new Set();
  list.querySelectorAll("li.message[data-id]").forEach(function (li) {
    seen.add(String(li.dataset.id));
  });

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
  }

  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function appendMessage(msg) {
    if (!msg || typeof msg.text !== "string") return;
    if (msg.id !== undefined && msg.id !== null) {
      var key = String(msg.id);
      if (seen.has(key)) return;
      seen.add(key);
    }
    var li = document.createElement("li");
    li.className = "message";
    if (msg.id !== undefined) li.dataset.id = msg.id;
    var time = document.createElement("time");
    time.dateTime = msg.created_at || "";
    time.textContent = formatTime(msg.created_at);
    var user = document.createElement("span");
    user.className = "user";
    user.textContent = msg.user || "?";
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = msg.text;
    li.append(time, " ", user, " ", text);
    list.appendChild(li);
    scrollToBottom();
  }

  scrollToBottom();

  if (typeof Centrifuge === "undefined") {
    setStatus("error", "error: realtime client not loaded (form posts still work)");
    return;
  }

  var scheme = location.protocol === "https:" ? "wss" : "ws";
  var url = scheme + "://" + location.host + config.websocketPath;
  var centrifuge = new Centrifuge(url);
  var sub = centrifuge.newSubscription(config.channel);
  var subscribed = false;

  centrifuge.on("connecting", function (ctx) {
    subscribed = false;
    setStatus("connecting", "connecting…");
  });
  centrifuge.on("disconnected", function (ctx) {
    subscribed = false;
    setStatus("disconnected", "disconnected: " + (ctx.reason || ctx.code));
  });
  centrifuge.on("error", function (ctx) {
    console.warn("centrifuge error", ctx);
  });

  sub.on("subscribing", function () {
    subscribed = false;
    setStatus("connecting", "subscribing…");
  });
  sub.on("subscribed", function () {
    subscribed = true;
    setStatus("connected");
  });
  sub.on("unsubscribed", function (ctx) {
    subscribed = false;
    setStatus("error", "error: unsubscribed (" + (ctx.reason || ctx.code) + ")");
  });
  sub.on("error", function (ctx) {
    console.warn("subscription error", ctx);
  });
  sub.on("publication", function (ctx) {
    appendMessage(ctx.data);
  });

  form.addEventListener("submit", function (event) {
    // Without a live subscription, fall back to the normal form POST.
    if (!subscribed) return;
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) {
      setStatus("error", "error: message is empty");
      return;
    }
    sendButton.disabled = true;
    sub.publish({ text: text }).then(
      function () {
        input.value = "";
        setStatus("connected");
      },
      function (err) {
        var reason = (err && (err.message || err.code)) || "publish failed";
        setStatus("error", "error: " + reason);
      }
    ).finally(function () {
      sendButton.disabled = false;
      input.focus();
    });
  });

  sub.subscribe();
  centrifuge.connect();
})();
