/*
 * Presence list of the room page (#presence, one <li> per username), loaded by room.html before
 * chat.js; defines window.ChatPresence.create(options) -> presence:
 *
 *   options.url      the room's presence URL (chat_config.presenceUrl): GET ->
 *                    {"users": [...], "backends": {"centrifugo": [...], "channels": [...]},
 *                    "errors"?: [...]} (chat.presence_views; 503 when every backend failed)
 *   options.element  the <ul> to fill
 *   options.pollMs   refresh period while the page is visible (default 10000 ms)
 *
 *   presence.set(backend, users)  replace one backend's list (a Channels presence frame)
 *   presence.refresh()            fetch now (a request asked for during one runs once after it)
 *   presence.refreshSoon()        fetch in 200 ms, coalescing bursts of join/leave pushes
 *
 * The list shows the union of the backends' last known lists; a backend missing from an answer
 * (it failed) keeps its last list.
 */
(function () {
  "use strict";

  function create(options) {
    // Last known usernames per backend; the list shows their union.
    var presenceByBackend = {};
    var presenceInFlight = false;
    var presenceAgain = false;
    var presenceTimer = null;

    function renderPresence() {
      var names = new Set();
      Object.keys(presenceByBackend).forEach(function (backend) {
        presenceByBackend[backend].forEach(function (name) {
          if (typeof name === "string" && name) names.add(name);
        });
      });
      var sorted = Array.from(names).sort();
      var current = Array.from(options.element.children).map(function (li) { return li.textContent; });
      if (current.join("\n") === sorted.join("\n")) return;
      options.element.replaceChildren.apply(options.element, sorted.map(function (name) {
        var li = document.createElement("li");
        li.textContent = name;
        return li;
      }));
    }

    function setPresence(backend, users) {
      if (!Array.isArray(users)) return;
      presenceByBackend[backend] = users;
      renderPresence();
    }

    function refreshPresence() {
      if (!options.url) return;
      if (presenceInFlight) {
        presenceAgain = true;
        return;
      }
      presenceInFlight = true;
      fetch(options.url, {
        credentials: "same-origin",
        redirect: "manual", // an expired session redirects to the login page: not JSON
        cache: "no-store",
        headers: { Accept: "application/json" }
      }).then(function (res) {
        // 503 (every backend failed) still carries the JSON shape; keep the last lists then.
        if (!res.ok) return null;
        return res.json();
      }).then(function (data) {
        if (!data || !data.backends) return;
        // A failed backend ("errors") is missing from "backends": keep its last known list.
        Object.keys(data.backends).forEach(function (backend) {
          presenceByBackend[backend] = data.backends[backend];
        });
        renderPresence();
      }).catch(function (err) {
        console.warn("presence refresh failed", err);
      }).finally(function () {
        presenceInFlight = false;
        if (presenceAgain) {
          presenceAgain = false;
          refreshPresence();
        }
      });
    }

    // Coalesce bursts (e.g. several join/leave pushes) into one request.
    function refreshPresenceSoon() {
      if (presenceTimer !== null) return;
      presenceTimer = setTimeout(function () {
        presenceTimer = null;
        refreshPresence();
      }, 200);
    }

    setInterval(function () {
      if (!document.hidden) refreshPresence();
    }, options.pollMs || 10000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refreshPresenceSoon();
    });

    return { set: setPresence, refresh: refreshPresence, refreshSoon: refreshPresenceSoon };
  }

  window.ChatPresence = { create: create };
})();
