/*
 * The reconnecting native WebSocket to Django Channels, one for the room page (chat.js:
 * /ws/chat/<room>/) and the index page (rooms.js: /ws/user/). Loaded before the page script;
 * defines window.ChatChannelsSocket:
 *
 *   ChatChannelsSocket.url(path) -> "ws(s)://<this host><path>" (same origin: the session cookie
 *     authenticates the connection)
 *
 *   ChatChannelsSocket.create(options) -> socket (not connected yet; call socket.connect())
 *     options.url          the ws(s):// URL
 *     options.stopCodes    {closeCode: "text"}: close codes after which it does not reconnect
 *                          (e.g. {4001: "not signed in", 4003: "no access to this room"}); the
 *                          status becomes "error", "error: <text> (<code>)"
 *     options.onStatus(state, text)  status changes made here: "connecting" ("connecting…"),
 *                          "disconnected" ("disconnected: <close code>, reconnecting in <n> s",
 *                          or "disconnected: <reason>" after disconnect(reason)), "error" (above).
 *                          "connected" is the page's to say (on open, or once joined).
 *     options.onOpen()     the socket opened
 *     options.onFrame(frame)  each frame, JSON-decoded (a non-JSON frame is logged and dropped)
 *     options.onDown()     the socket is gone: closed by the server or the network, or by
 *                          disconnect(); called before the status change (stop timers, fail
 *                          what waits for an answer, show no live transport)
 *     options.minDelayMs, maxDelayMs, jitter  reconnect backoff: min * 2^attempt, capped at max,
 *                          times 1 + random * jitter (still capped), so a restarted server is
 *                          not hit by every page at once (defaults 1000, 30000, 0.1)
 *
 *   socket.connect()       connect now, unless a socket is already open or opening: clears a
 *                          stop (disconnect(), stop code) and the backoff
 *   socket.disconnect(reason)  close with 1000 and do not reconnect; status "disconnected: reason"
 *   socket.send(obj) -> true if sent as JSON (false while not open: nothing is queued)
 *   socket.isOpen()
 *   socket.resetBackoff()  the next reconnect waits minDelayMs again: call it once the connection
 *                          is really up (rooms.js: on open; chat.js: on the history frame)
 *
 * The page going into the back/forward cache (pagehide, persisted) disconnects with reason
 * "page hidden"; coming back (pageshow, persisted) connects again if stopped.
 */
(function () {
  "use strict";

  function url(path) {
    var scheme = location.protocol === "https:" ? "wss" : "ws";
    return scheme + "://" + location.host + path;
  }

  function create(options) {
    var minDelayMs = options.minDelayMs || 1000;
    var maxDelayMs = options.maxDelayMs || 30000;
    var jitter = options.jitter === undefined ? 0.1 : options.jitter;
    var stopCodes = options.stopCodes || {};
    var ws = null;
    var stopped = false; // no reconnect: disconnect(), a stop code, the back/forward cache
    var attempts = 0;
    var reconnectTimer = null;

    function call(name) {
      if (typeof options[name] === "function") {
        options[name].apply(null, Array.prototype.slice.call(arguments, 1));
      }
    }

    function clearReconnect() {
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      reconnectTimer = null;
    }

    function scheduleReconnect(code) {
      var delay = Math.min(maxDelayMs, minDelayMs * Math.pow(2, attempts));
      delay = Math.min(maxDelayMs, delay * (1 + Math.random() * jitter)); // spread herds
      attempts += 1;
      call("onStatus", "disconnected",
        "disconnected: " + code + ", reconnecting in " + Math.round(delay / 1000) + " s");
      reconnectTimer = setTimeout(function () {
        reconnectTimer = null;
        open();
      }, delay);
    }

    function open() {
      if (stopped) return;
      call("onStatus", "connecting", "connecting…");
      var socket = new WebSocket(options.url);
      ws = socket;
      socket.onopen = function () {
        if (ws === socket) call("onOpen");
      };
      socket.onmessage = function (event) {
        if (ws !== socket) return;
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          console.warn("channels: non-JSON frame", event.data);
          return;
        }
        call("onFrame", frame);
      };
      socket.onerror = function (event) {
        console.warn("channels websocket error", event);
      };
      socket.onclose = function (event) {
        if (ws !== socket) return; // replaced or disconnected: already handled
        ws = null;
        call("onDown");
        if (Object.prototype.hasOwnProperty.call(stopCodes, event.code)) {
          stopped = true;
          call("onStatus", "error", "error: " + stopCodes[event.code] + " (" + event.code + ")");
        } else if (!stopped) {
          scheduleReconnect(event.code);
        }
      };
    }

    function disconnect(reason) {
      stopped = true;
      clearReconnect();
      var socket = ws;
      ws = null; // its onclose is ignored: connect() may open another before it fires
      call("onDown");
      if (socket) socket.close(1000, reason);
      call("onStatus", "disconnected", "disconnected: " + reason);
    }

    function connect() {
      if (ws) return;
      clearReconnect();
      stopped = false;
      attempts = 0;
      open();
    }

    window.addEventListener("pagehide", function (event) {
      if (event.persisted) disconnect("page hidden");
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted && stopped) connect();
    });

    return {
      connect: connect,
      disconnect: disconnect,
      send: function (obj) {
        if (!ws || ws.readyState !== WebSocket.OPEN) return false;
        ws.send(JSON.stringify(obj));
        return true;
      },
      isOpen: function () { return !!ws && ws.readyState === WebSocket.OPEN; },
      resetBackoff: function () { attempts = 0; }
    };
  }

  window.ChatChannelsSocket = { create: create, url: url };
})();
