/*
 * The room page's read mark: tells the server how far the user has read, so the index page's
 * unread count of the room drops. Loaded by room.html before chat.js; defines
 * window.ChatReadMark.create(options) -> mark:
 *
 *   options.url        POST endpoint (chat_config.readUrl, /rooms/<name>/read/): JSON {"seq": int}
 *                      -> 204 (chat.membership_views.mark_read; the server only moves the mark
 *                      forward and ignores non-members)
 *   options.csrfToken  the page's CSRF token (sent as X-CSRFToken)
 *   options.delayMs    debounce (default 1000 ms): a burst of messages is one request
 *
 *   mark.seen(seq)  a message numbered seq (Message.seq) is shown. Sent (debounced) while the tab
 *                   is visible; seen while hidden, it is sent when the tab becomes visible again.
 *   mark.sent()     the highest seq the server acknowledged (0: none yet)
 *
 * Failures (network, 403 after a level change, signed out) are logged and retried with the next
 * seen() or visibility change; the room page's GET marks the room read anyway.
 */
(function () {
  "use strict";

  function create(options) {
    var delayMs = options.delayMs || 1000;
    var maxSeen = 0;
    var lastSent = 0;
    var inFlight = false;
    var timer = null;

    function schedule() {
      if (timer !== null || document.hidden || maxSeen <= lastSent) return;
      timer = setTimeout(send, delayMs);
    }

    function send() {
      timer = null;
      if (document.hidden || maxSeen <= lastSent || !options.url) return;
      if (inFlight) { schedule(); return; }
      var seq = maxSeen;
      inFlight = true;
      fetch(options.url, {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual",
        cache: "no-store",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": options.csrfToken || ""
        },
        body: JSON.stringify({ seq: seq })
      }).then(function (res) {
        if (res.status !== 204) throw new Error("read mark answered " + (res.status || "a redirect"));
        lastSent = Math.max(lastSent, seq);
        inFlight = false;
        schedule(); // messages seen meanwhile
      }).catch(function (err) {
        inFlight = false; // no retry loop: the next seen() or visibility change tries again
        console.warn("read mark failed", err);
      });
    }

    document.addEventListener("visibilitychange", schedule);

    return {
      seen: function (seq) {
        seq = Number(seq);
        if (!(seq > maxSeen)) return;
        maxSeen = seq;
        schedule();
      },
      sent: function () { return lastSent; }
    };
  }

  window.ChatReadMark = { create: create };
})();
