/*
 * Index page: live unread counts of "Your rooms" and the user's notices, over one connection.
 *
 * Configuration: the JSON in #rooms-config (chat.page_config.client_config): backend, transport
 * ("centrifugo" | "channels": CHAT_REALTIME_BACKEND, and ?transport=channels with "both", the
 * room page's rule), clientAuth, tokenUrl, transports, emulationEndpoint, personalChannel,
 * notificationsPath.
 *
 * - Centrifugo: a client built by centrifugo-client.js, without any Subscription: Centrifugo
 *   subscribes the connection to the personal channel server-side, and its publications arrive
 *   on the client's "publication" event (ctx.channel == personalChannel).
 * - Channels: a native WebSocket to notificationsPath (/ws/user/, chat.consumers.
 *   NotificationConsumer) sending {"type": "notification", "data": event}; reconnects with
 *   backoff 1 s -> 30 s, not after close code 4001 (signed out).
 *
 * Events (data): {"type": "room_activity", "room", "seq", "id", "user"} (chat.activity) sets the
 * unread count of that room in #my-rooms (li.room[data-name] with data-last-read, holding
 * span.unread[data-count]) to max(current, seq - data-last-read): a repeated or late event never
 * counts twice. {"type": "notice", "text"} goes to #notices (notices.js).
 *
 * Status: #notify-status data-state "connecting" | "connected" | "disconnected" (and "error"
 * after 4001), data-transport "centrifugo" | "channels"; #live-transport shows the live
 * transport ("websocket", "http_stream", "sse" or "channels"; "none" while not connected) and,
 * on Centrifugo, #notify-status gets data-centrifugo-transport.
 *
 * window.chatNotify (tests, console): events (the last 50 event data received), disconnect(),
 * connect().
 */
(function () {
  "use strict";

  var configEl = document.getElementById("rooms-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent);

  var statusEl = document.getElementById("notify-status");
  var transportEl = document.getElementById("live-transport");
  var myRooms = document.getElementById("my-rooms");
  var notices = window.ChatNotices.create(document.getElementById("notices"));

  var RECONNECT_MIN_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var CLOSE_UNAUTHORIZED = 4001;
  var MAX_EVENTS = 50;

  var transport = config.transport === "channels" ? "channels" : "centrifugo";
  statusEl.dataset.transport = transport;
  var events = [];

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function roomItem(name) {
    if (!myRooms) return null;
    var items = myRooms.querySelectorAll("li.room[data-name]");
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.name === name) return items[i];
    }
    return null;
  }

  function roomActivity(event) {
    var li = roomItem(event.room);
    var seq = Number(event.seq);
    if (!li || !(seq > 0)) return;
    var span = li.querySelector(".unread");
    if (!span) return;
    var unread = Math.max(0, seq - (Number(li.dataset.lastRead) || 0));
    if (unread > (Number(span.dataset.count) || 0)) {
      span.dataset.count = String(unread);
      span.textContent = String(unread);
    }
  }

  function onEvent(data) {
    if (!data || typeof data !== "object") return;
    events.push(data);
    if (events.length > MAX_EVENTS) events.shift();
    if (data.type === "room_activity") roomActivity(data);
    else notices.handle(data);
  }

  function startCentrifugo() {
    if (typeof Centrifuge === "undefined") {
      setStatus("error", "error: realtime client not loaded");
      return null;
    }
    var centrifuge = window.ChatCentrifugo.create(config, {
      statusEl: statusEl,
      transportEl: transportEl,
      onPersonal: onEvent
    });
    centrifuge.on("connecting", function () { setStatus("connecting", "connecting…"); });
    centrifuge.on("connected", function () { setStatus("connected"); });
    centrifuge.on("disconnected", function (ctx) {
      setStatus("disconnected", "disconnected: " + (ctx.reason || ctx.code));
    });
    centrifuge.connect();
    return {
      disconnect: function () { centrifuge.disconnect(); },
      connect: function () { centrifuge.connect(); }
    };
  }

  function startChannels() {
    var scheme = location.protocol === "https:" ? "wss" : "ws";
    var url = scheme + "://" + location.host + (config.notificationsPath || "/ws/user/");
    var ws = null;
    var stopped = false;
    var attempts = 0;
    var reconnectTimer = null;

    function show(name) { window.ChatCentrifugo.showTransport(name, statusEl, transportEl); }

    function connect() {
      if (stopped) return;
      setStatus("connecting", "connecting…");
      var socket = new WebSocket(url);
      ws = socket;
      socket.onopen = function () {
        attempts = 0;
        setStatus("connected");
        show("channels");
      };
      socket.onmessage = function (message) {
        var frame;
        try {
          frame = JSON.parse(message.data);
        } catch (e) {
          return;
        }
        if (frame && frame.type === "notification") onEvent(frame.data);
      };
      socket.onclose = function (event) {
        if (ws !== socket) return;
        ws = null;
        show(null);
        if (event.code === CLOSE_UNAUTHORIZED) {
          stopped = true;
          setStatus("error", "error: not signed in (" + event.code + ")");
          return;
        }
        if (stopped) return;
        var delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, attempts));
        attempts += 1;
        setStatus("disconnected", "disconnected: " + event.code + ", reconnecting in " + Math.round(delay / 1000) + " s");
        reconnectTimer = setTimeout(function () { reconnectTimer = null; connect(); }, delay);
      };
    }

    function pause(reason) {
      stopped = true;
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      var socket = ws;
      ws = null;
      show(null);
      if (socket) socket.close(1000, reason);
      setStatus("disconnected", "disconnected: " + reason);
    }

    function resume() {
      if (ws) return;
      stopped = false;
      attempts = 0;
      connect();
    }

    window.addEventListener("pagehide", function (event) { if (event.persisted) pause("page hidden"); });
    window.addEventListener("pageshow", function (event) { if (event.persisted && stopped) resume(); });

    connect();
    return { disconnect: function () { pause("disconnect requested"); }, connect: resume };
  }

  var client = transport === "channels" ? startChannels() : startCentrifugo();
  window.chatNotify = {
    events: events,
    disconnect: client ? client.disconnect : function () {},
    connect: client ? client.connect : function () {}
  };
})();
