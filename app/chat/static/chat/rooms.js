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
 * - Channels: a native WebSocket (channels-socket.js, shared with chat.js) to notificationsPath
 *   (/ws/user/, chat.consumers.NotificationConsumer) sending {"type": "notification", "data":
 *   event}; reconnects with backoff 1 s -> 30 s (plus up to 10 % jitter; the backoff restarts on
 *   open), not after close code 4001 (signed out).
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
    var centrifuge = window.ChatCentrifugo.create(config, {
      statusEl: statusEl,
      transportEl: transportEl,
      onStatus: setStatus, // connecting, disconnected, error without centrifuge-js
      onPersonal: onEvent
    });
    if (!centrifuge) return null;
    centrifuge.on("connected", function () { setStatus("connected"); });
    centrifuge.connect();
    return {
      disconnect: function () { centrifuge.disconnect(); },
      connect: function () { centrifuge.connect(); }
    };
  }

  function startChannels() {
    function show(name) { window.ChatCentrifugo.showTransport(name, statusEl, transportEl); }

    // Reconnects with backoff; pauses in the back/forward cache (channels-socket.js).
    var socket = window.ChatChannelsSocket.create({
      url: window.ChatChannelsSocket.url(config.notificationsPath || "/ws/user/"),
      stopCodes: { 4001: "not signed in" },
      onStatus: setStatus,
      onOpen: function () {
        socket.resetBackoff();
        setStatus("connected");
        show("channels");
      },
      onFrame: function (frame) {
        if (frame && frame.type === "notification") onEvent(frame.data);
      },
      onDown: function () { show(null); }
    });
    socket.connect();
    return { disconnect: function () { socket.disconnect("disconnect requested"); }, connect: socket.connect };
  }

  var client = transport === "channels" ? startChannels() : startCentrifugo();
  window.chatNotify = {
    events: events,
    disconnect: client ? client.disconnect : function () {},
    connect: client ? client.connect : function () {}
  };
})();
