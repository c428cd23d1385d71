/*
 * Room page live chat: messages and the "Online" list over Centrifugo or Django Channels.
 *
 * Configuration: the JSON in #chat-config (chat.page_config.room_config): channel,
 * websocketPath, transports, emulationEndpoint, personalChannel, channelsPath, backend, transport
 * ("centrifugo" | "channels", chosen by the server from CHAT_REALTIME_BACKEND and ?transport=),
 * clientAuth ("proxy" | "jwt"), needsSubscriptionToken, tokenUrl, subscriptionTokenUrl,
 * presenceUrl, presenceTtl (seconds), messagesUrl, readUrl, username, maxLength.
 *
 * Centrifugo transport (centrifuge-js, global `Centrifuge`; the client is built by
 * centrifugo-client.js: transports in fallback order websocket / http_stream / sse with the
 * emulation endpoint, connection token in "jwt" mode). clientAuth "proxy": no token,
 * Centrifugo's connect proxy authenticates with the forwarded Django session cookie. clientAuth
 * "jwt": rooms whose access level is not "users" (needsSubscriptionToken) get a Subscription
 * `getToken` (subscriptionTokenUrl?channel=...), "users" rooms subscribe without a token (the
 * subscribe proxy authorizes them). Publication data is the message dict from the publish proxy
 * {id, seq, room, user, text, created_at}; sending is sub.publish({text}). The live transport's
 * name is shown in #live-transport and #chat-status[data-centrifugo-transport]. Publications of
 * the user's personal channel (server-side subscription) are notices (notices.js, #notices).
 *
 * Channels transport (native WebSocket, no library; the socket is channels-socket.js's, shared
 * with rooms.js): same-origin ws(s)://host/ws/chat/<room>/, authenticated by the session cookie.
 * Frames (chat.consumers): server -> client {"type": "history", messages},
 * {"type": "message", message}, {"type": "presence", users}, {"type": "error", code, message};
 * client -> server {"text"} and {"type": "heartbeat"} every presenceTtl / 2 seconds. Reconnects
 * with exponential backoff 1 s -> 30 s (plus up to 10 % jitter; the backoff restarts once joined,
 * i.e. on the history frame), except after close codes 4001 (unauthenticated) / 4003
 * (forbidden), which leave an error status. Server pushes to the user arrive as
 * {"type": "notification", data} frames (notices); #live-transport shows "channels" while joined.
 *
 * Presence (#presence, one <li> per username): GET presenceUrl ->
 * {"users": [...], "backends": {"centrifugo": [...], "channels": [...]}, "errors"?: [...]},
 * fetched on (re)subscribe, on Centrifugo join/leave events, and every 10 s; Channels presence
 * frames replace the "channels" part directly.
 *
 * Messages are de-duplicated by id (server-rendered history, Centrifugo recovery, Channels
 * history frames re-sent on reconnect, gap fill) and kept in id order (a message is inserted
 * before the first shown one with a higher id). Status (#chat-status data-state): connecting,
 * connected, disconnected, error. Without a live connection the form posts normally (no-JS
 * fallback). Times: every <time> of #messages in the user's locale (timefmt.js). Read mark:
 * each message shown is reported to readUrl (readmark.js: debounced, while the tab is visible).
 *
 * Gap fill (gapfill.js; the database is the source of truth): messages after the highest id
 * shown before the gap, on every Centrifugo `subscribed` (the first: sent between page render
 * and subscribe; later ones: reconnect, resubscribe, wasRecovering && !recovered) and after an
 * `unsubscribed` with code 112 (unrecoverable position: centrifuge-js 5.8 resubscribes only with
 * getState, so chat.js subscribes again once); on Channels after every join (`history` frame,
 * which has only the last CHAT_HISTORY_SIZE messages); and on either path when a live message's
 * room number (seq) skips one: a publication lost where no event shows it (e.g. acknowledged by a
 * Redis master that died before its replica had it).
 *
 * window.chatDebug (tests, console): lastId(), fillGaps() -> Promise, fills (gapfill.js
 * records), disconnect(), connect(), reconnect() of the realtime client.
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
  var presenceEl = document.getElementById("presence");
  var transportEl = document.getElementById("live-transport");
  var notices = window.ChatNotices.create(document.getElementById("notices"));
  var csrfInput = form.querySelector("input[name=csrfmiddlewaretoken]");
  var readMark = window.ChatReadMark.create({
    url: config.readUrl,
    csrfToken: csrfInput ? csrfInput.value : ""
  });

  var PRESENCE_POLL_MS = 10000;
  var SEND_TIMEOUT_MS = 10000;
  var UNRECOVERABLE_POSITION = 112; // Centrifugo client error code

  var transport = config.transport === "channels" ? "channels" : "centrifugo";
  statusEl.dataset.transport = transport;

  // Ids already shown (server-rendered history), so live/recovered messages don't duplicate,
  // and the highest of them (the gap fill asks for what comes after it).
  // maxSeq: the highest room message number (msg.seq: 1, 2, 3, ... with no gap) shown; a live
  // message numbered above maxSeq + 1 means one was lost on the way: fill from the database.
  var seen = new Set();
  var maxId = 0;
  var maxSeq = 0;
  list.querySelectorAll("li.message[data-id]").forEach(function (li) {
    seen.add(String(li.dataset.id));
    maxId = Math.max(maxId, Number(li.dataset.id) || 0);
    maxSeq = Math.max(maxSeq, Number(li.dataset.seq) || 0);
  });

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
  }

  // Before the first shown message with a higher id (from the end: usually none), else last.
  function insertInOrder(li, id) {
    var before = null;
    for (var el = list.lastElementChild; el; el = el.previousElementSibling) {
      if (!(Number(el.dataset.id) > id)) break;
      before = el;
    }
    list.insertBefore(li, before);
  }

  // Shows msg in id order unless already shown; true if added.
  function appendMessage(msg) {
    if (!msg || typeof msg.text !== "string") return false;
    var id = Number(msg.id);
    var idBefore = maxId;
    if (msg.id !== undefined && msg.id !== null) {
      var key = String(msg.id);
      if (seen.has(key)) return false;
      seen.add(key);
      if (id > maxId) maxId = id;
    }
    var seq = Number(msg.seq);
    if (seq > 0) {
      if (maxSeq > 0 && seq > maxSeq + 1) fillGaps(idBefore);
      if (seq > maxSeq) maxSeq = seq;
    }
    var li = document.createElement("li");
    li.className = "message";
    if (msg.id !== undefined) li.dataset.id = msg.id;
    if (seq > 0) li.dataset.seq = seq;
    var time = document.createElement("time");
    time.dateTime = msg.created_at || "";
    time.textContent = window.ChatTime.format(msg.created_at);
    var user = document.createElement("span");
    user.className = "user";
    user.textContent = msg.user || "?";
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = msg.text;
    li.append(time, " ", user, " ", text);
    if (isNaN(id)) list.appendChild(li);
    else insertInOrder(li, id);
    scrollToBottom();
    if (seq > 0) readMark.seen(seq);
    return true;
  }

  // --- gap fill (gapfill.js) ---------------------------------------------------

  var gapFiller = window.ChatGapFill && config.messagesUrl ? window.ChatGapFill.create({
    url: config.messagesUrl,
    lastId: function () { return maxId; },
    insert: appendMessage
  }) : null;

  // Show what the realtime layer missed after message id `after` (default: the highest shown).
  function fillGaps(after) {
    return gapFiller ? gapFiller.fill(after) : Promise.resolve(null);
  }

  function errorReason(err, fallback) {
    return (err && (err.message || err.code)) || fallback;
  }

  // --- presence (presence.js) -----------------------------------------------

  var presence = window.ChatPresence.create({
    url: config.presenceUrl,
    element: presenceEl,
    pollMs: PRESENCE_POLL_MS
  });
  function setPresence(backend, users) { presence.set(backend, users); }
  function refreshPresence() { presence.refresh(); }
  function refreshPresenceSoon() { presence.refreshSoon(); }

  window.ChatTime.formatAll(list); // the server's H:i (UTC) -> the user's locale
  scrollToBottom();

  // --- transports ------------------------------------------------------------
  // Each returns {isLive(): bool, send(text, done(errorText|null))}.

  function startCentrifugo() {
    var centrifuge = window.ChatCentrifugo.create(config, {
      statusEl: statusEl,
      transportEl: transportEl,
      onStatus: setStatus, // connecting, disconnected, error without centrifuge-js
      unavailableText: "error: realtime client not loaded (form posts still work)",
      onPersonal: function (data) { notices.handle(data); }
    });
    if (!centrifuge) return null;
    var subOptions = {};
    if (config.clientAuth === "jwt" && config.needsSubscriptionToken) {
      subOptions.getToken = function (ctx) {
        return window.ChatCentrifugo.fetchToken(
          config.subscriptionTokenUrl + "?channel=" + encodeURIComponent(ctx.channel));
      };
    }
    var sub = centrifuge.newSubscription(config.channel, subOptions);
    var subscribed = false;

    centrifuge.on("connecting", function () { subscribed = false; });
    centrifuge.on("disconnected", function () { subscribed = false; });
    centrifuge.on("error", function (ctx) {
      console.warn("centrifuge error", ctx);
    });

    sub.on("subscribing", function () {
      subscribed = false;
      setStatus("connecting", "subscribing…");
    });
    var resubscribed112 = false;
    sub.on("subscribed", function (ctx) {
      subscribed = true;
      resubscribed112 = false;
      setStatus("connected");
      refreshPresence();
      // First subscribe, reconnect, resubscribe, failed recovery (ctx.wasRecovering &&
      // !ctx.recovered): the server may have messages this page has not shown. Called here,
      // before recovered publications are delivered, so maxId is still the pre-gap one.
      if (ctx && ctx.wasRecovering && !ctx.recovered) console.info("recovery incomplete: gap fill");
      fillGaps();
    });
    sub.on("unsubscribed", function (ctx) {
      subscribed = false;
      if (ctx.code === UNRECOVERABLE_POSITION && !resubscribed112) {
        resubscribed112 = true;
        fillGaps();
        sub.subscribe();
        return;
      }
      setStatus("error", "error: unsubscribed (" + (ctx.reason || ctx.code) + ")");
    });
    sub.on("error", function (ctx) {
      console.warn("subscription error", ctx);
    });
    sub.on("publication", function (ctx) {
      appendMessage(ctx.data);
    });
    // Namespace "rooms" has join_leave + force_push_join_leave: refresh the list on changes.
    sub.on("join", refreshPresenceSoon);
    sub.on("leave", refreshPresenceSoon);

    sub.subscribe();
    centrifuge.connect();

    return {
      isLive: function () { return subscribed; },
      disconnect: function () { centrifuge.disconnect(); },
      connect: function () { centrifuge.connect(); },
      reconnect: function () { centrifuge.disconnect(); centrifuge.connect(); },
      send: function (text, done) {
        sub.publish({ text: text }).then(
          function () { done(null); },
          function (err) { done(errorReason(err, "publish failed")); }
        );
      }
    };
  }

  function startChannels() {
    var heartbeatMs = Math.max(1000, (Number(config.presenceTtl) || 60) * 500);
    var live = false; // joined: history frame received
    var heartbeatTimer = null;
    var pending = null; // {done, timer} while our sent message awaits its echo or an error

    function finishPending(errorText) {
      if (!pending) return;
      var p = pending;
      pending = null;
      clearTimeout(p.timer);
      p.done(errorText);
    }

    function stopHeartbeat() {
      if (heartbeatTimer !== null) {
        clearInterval(heartbeatTimer);
        heartbeatTimer = null;
      }
    }

    function onFrame(frame) {
      if (!frame || typeof frame !== "object") return;
      switch (frame.type) {
        case "history":
          live = true;
          socket.resetBackoff();
          setStatus("connected");
          window.ChatCentrifugo.showTransport("channels", statusEl, transportEl);
          // The frame has only the last CHAT_HISTORY_SIZE messages: fill from before it.
          var before = maxId;
          (frame.messages || []).forEach(appendMessage);
          fillGaps(before);
          stopHeartbeat();
          heartbeatTimer = setInterval(function () { socket.send({ type: "heartbeat" }); }, heartbeatMs);
          socket.send({ type: "heartbeat" }); // answered by a presence frame
          refreshPresence(); // the other backend's users too (backend "both")
          break;
        case "message":
          appendMessage(frame.message);
          if (pending && frame.message && frame.message.user === config.username) finishPending(null);
          break;
        case "presence":
          setPresence("channels", frame.users);
          break;
        case "notification":
          notices.handle(frame.data);
          break;
        case "error":
          if (pending) {
            finishPending(frame.message || "error " + frame.code);
          } else {
            setStatus("error", "error: " + (frame.message || frame.code));
          }
          break;
      }
    }

    // Reconnects with backoff; pauses in the back/forward cache (channels-socket.js).
    var socket = window.ChatChannelsSocket.create({
      url: window.ChatChannelsSocket.url(config.channelsPath),
      stopCodes: { 4001: "not signed in", 4003: "no access to this room" },
      onStatus: setStatus,
      onFrame: onFrame,
      onDown: function () {
        live = false;
        window.ChatCentrifugo.showTransport(null, statusEl, transportEl);
        stopHeartbeat();
        finishPending("connection closed");
      }
    });
    socket.connect();

    return {
      isLive: function () { return live; },
      disconnect: function () { socket.disconnect("disconnect requested"); },
      connect: socket.connect,
      reconnect: function () { socket.disconnect("reconnect requested"); socket.connect(); },
      send: function (text, done) {
        finishPending("superseded");
        pending = {
          done: done,
          timer: setTimeout(function () { finishPending("no answer from server"); }, SEND_TIMEOUT_MS)
        };
        socket.send({ text: text });
      }
    };
  }

  var client = transport === "channels" ? startChannels() : startCentrifugo();
  if (!client) return;

  window.chatDebug = {
    lastId: function () { return maxId; },
    fillGaps: function () { return fillGaps(); },
    fills: gapFiller ? gapFiller.fills : [],
    disconnect: client.disconnect,
    connect: client.connect,
    reconnect: client.reconnect
  };

  form.addEventListener("submit", function (event) {
    // Without a live connection, fall back to the normal form POST.
    if (!client.isLive()) return;
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) {
      setStatus("error", "error: message is empty");
      return;
    }
    sendButton.disabled = true;
    client.send(text, function (errorText) {
      if (errorText) {
        setStatus("error", "error: " + errorText);
      } else {
        input.value = "";
        setStatus("connected");
      }
      sendButton.disabled = false;
      input.focus();
    });
  });
})();
