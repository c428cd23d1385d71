/*
 * The Centrifugo client of a page, built one way for the room page (chat.js) and the index page
 * (rooms.js). Loaded after vendor/centrifuge.js (centrifuge-js 5.8, global `Centrifuge`);
 * defines window.ChatCentrifugo:
 *
 *   ChatCentrifugo.create(config, options) -> Centrifuge (not connected yet; call .connect()), or
 *     null when centrifuge-js is not loaded (options.onStatus is told "error" first)
 *     config (chat.page_config.client_config, JSON in #chat-config / #rooms-config):
 *       transports         [{transport: "websocket"|"http_stream"|"sse", endpoint: "/path"}, ...]
 *                          in fallback order (CHAT_CENTRIFUGO_TRANSPORTS). centrifuge-js tries
 *                          them in turn, but only until one has ever opened: after that it
 *                          reconnects with that one. Same-origin paths; the websocket one is
 *                          made ws(s)://host/path here (older browsers refuse a relative
 *                          WebSocket URL), the others https?://host/path.
 *       emulationEndpoint  path of Centrifugo's bidirectional emulation endpoint (/emulation),
 *                          where http_stream and sse send client -> server commands
 *                          (https://centrifugal.dev/docs/transports/http_stream).
 *       clientAuth         "proxy": no token (Centrifugo's connect proxy reads the forwarded
 *                          session cookie); "jwt": `getToken` fetches {"token"} from tokenUrl.
 *       personalChannel    "<ns>:#<user pk>": the user's personal channel, to which Centrifugo
 *                          subscribes the connection server-side
 *                          (https://centrifugal.dev/docs/server/server_subs); its publications
 *                          arrive on the client's "publication" event, not on a Subscription.
 *     options:
 *       statusEl     element that gets data-centrifugo-transport = the live transport's name
 *                    (removed while not connected)
 *       transportEl  element whose text is the live transport's name ("none" while not
 *                    connected)
 *       onPersonal   function (data, ctx) for each publication of personalChannel
 *       onStatus     function (state, text), the client's status as the pages show it (the same
 *                    words as channels-socket.js): "connecting" ("connecting…"), "disconnected"
 *                    ("disconnected: <reason or code>"), "error" (unavailableText) when
 *                    centrifuge-js is missing. "connected" is the page's to say (connected or
 *                    subscribed).
 *       unavailableText  status text without centrifuge-js (default "error: realtime client
 *                    not loaded")
 *
 *   ChatCentrifugo.fetchToken(url) -> Promise of the token string: GET url (same origin, no
 *     redirects followed) answering {"token": "..."}. 401/403 or a redirect (signed out) reject
 *     with Centrifuge.UnauthorizedError, which stops the client/subscription instead of retrying
 *     (centrifuge-js README, "Connection token" / "Subscription token").
 *
 *   ChatCentrifugo.showTransport(name, statusEl, transportEl): what create() does on
 *     connect/disconnect, for other transports (chat.js and rooms.js show "channels" with it
 *     over the channels-socket.js connection).
 */
(function () {
  "use strict";

  function absolute(path, websocket) {
    if (!/^\//.test(path)) return path; // already absolute (or protocol-relative): leave it
    var secure = location.protocol === "https:";
    var scheme = websocket ? (secure ? "wss:" : "ws:") : location.protocol;
    return scheme + "//" + location.host + path;
  }

  function endpoints(config) {
    var list = Array.isArray(config.transports) && config.transports.length
      ? config.transports
      : [{ transport: "websocket", endpoint: config.websocketPath || "/connection/websocket" }];
    return list.map(function (item) {
      return {
        transport: item.transport,
        endpoint: absolute(item.endpoint, item.transport === "websocket")
      };
    });
  }

  function fetchToken(url) {
    return fetch(url, {
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (res) {
      if (res.type === "opaqueredirect" || res.status === 401 || res.status === 403) {
        // Not signed in (login redirect) or not allowed: stop instead of retrying.
        throw new Centrifuge.UnauthorizedError("token refused (" + (res.status || "redirect") + ")");
      }
      if (!res.ok) throw new Error("token endpoint answered " + res.status);
      return res.json();
    }).then(function (data) {
      if (!data || typeof data.token !== "string" || !data.token) {
        throw new Error("token endpoint answered without a token");
      }
      return data.token;
    });
  }

  function showTransport(name, statusEl, transportEl) {
    if (statusEl) {
      if (name && name !== "channels") statusEl.dataset.centrifugoTransport = name;
      else delete statusEl.dataset.centrifugoTransport;
    }
    if (transportEl) transportEl.textContent = name || "none";
  }

  function create(config, options) {
    options = options || {};
    function status(state, text) {
      if (typeof options.onStatus === "function") options.onStatus(state, text);
    }
    if (typeof Centrifuge === "undefined") {
      status("error", options.unavailableText || "error: realtime client not loaded");
      return null;
    }
    var clientOptions = {
      emulationEndpoint: absolute(config.emulationEndpoint || "/emulation", false)
    };
    if (config.clientAuth === "jwt") {
      clientOptions.getToken = function () { return fetchToken(config.tokenUrl); };
    }
    var centrifuge = new Centrifuge(endpoints(config), clientOptions);

    centrifuge.on("connected", function (ctx) {
      showTransport(ctx.transport, options.statusEl, options.transportEl);
    });
    centrifuge.on("connecting", function () {
      showTransport(null, options.statusEl, options.transportEl);
      status("connecting", "connecting…");
    });
    centrifuge.on("disconnected", function (ctx) {
      showTransport(null, options.statusEl, options.transportEl);
      status("disconnected", "disconnected: " + (ctx.reason || ctx.code));
    });
    centrifuge.on("publication", function (ctx) {
      if (ctx.channel === config.personalChannel && typeof options.onPersonal === "function") {
        options.onPersonal(ctx.data, ctx);
      }
    });
    return centrifuge;
  }

  window.ChatCentrifugo = {
    create: create,
    fetchToken: fetchToken,
    showTransport: showTransport,
    endpoints: endpoints
  };
})();
