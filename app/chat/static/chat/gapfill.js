/*
 * Gap fill for the room page: the database is the source of truth, the realtime layer the fast
 * path. After the realtime client (re)joins the room, chat.js asks the server for every message
 * with an id above the highest one it had shown, so messages sent while it was away (or
 * published before it subscribed, or never published) still appear, once.
 *
 * Loaded by room.html before chat.js; defines window.ChatGapFill.create(options) -> filler:
 *
 *   options.url       the room's messages URL (chat_config.messagesUrl, /rooms/<name>/messages/):
 *                     GET ?after=<id> -> {"messages": [{id, room, user, text, created_at}, ...]
 *                     ascending by id, "more": bool} (chat.views.messages_after)
 *   options.lastId()  the highest message id shown (number, 0 for none)
 *   options.insert(m) shows message m in id order unless already shown; returns true if added
 *   options.maxPages  pages per fill (default 20; a page is at most CHAT_GAP_FILL_PAGE_SIZE)
 *
 *   filler.fill(after?) -> Promise of a record {after, ids: [ids the server returned], added,
 *                          pages, complete: false when maxPages stopped it}, or of null when the
 *                          fill failed (logged). `after` defaults to options.lastId(). A fill
 *                          asked for while one runs is queued (once, from the lowest `after`
 *                          asked for) and runs when it ends.
 *   filler.fills          the last 20 completed fills' records, oldest first.
 *
 * Requests are same-origin with the session cookie, Accept: application/json, no redirects
 * followed (an expired session's login redirect is an error, not data). Network errors and 5xx
 * answers (503: the database is down) are retried after 2, 5 and 15 s; others fail the fill.
 */
(function () {
  "use strict";

  var MAX_PAGES = 20;
  var RETRY_DELAYS_MS = [2000, 5000, 15000];

  function HttpError(status) {
    this.status = status;
    this.message = "gap fill answered " + (status || "a redirect (signed out?)");
  }
  HttpError.prototype = Object.create(Error.prototype);
  HttpError.prototype.name = "HttpError";

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function create(options) {
    var maxPages = options.maxPages || MAX_PAGES;
    var running = null; // promise of the fill in flight
    var queued = null; // promise of the fill queued behind it
    var queuedAfter = null;
    var fills = [];

    function getPage(after, attempt) {
      var sep = options.url.indexOf("?") === -1 ? "?" : "&";
      return fetch(options.url + sep + "after=" + encodeURIComponent(after), {
        credentials: "same-origin",
        redirect: "manual",
        cache: "no-store",
        headers: { Accept: "application/json" }
      }).then(function (res) {
        if (res.type === "opaqueredirect" || !res.ok) throw new HttpError(res.status);
        return res.json();
      }).catch(function (err) {
        var retryable = !(err instanceof HttpError) || err.status >= 500;
        if (!retryable || attempt >= RETRY_DELAYS_MS.length) throw err;
        return sleep(RETRY_DELAYS_MS[attempt]).then(function () { return getPage(after, attempt + 1); });
      });
    }

    function run(after) {
      var record = { after: after, ids: [], added: 0, pages: 0, complete: true };
      function next(from) {
        return getPage(from, 0).then(function (data) {
          var messages = data && Array.isArray(data.messages) ? data.messages : [];
          var last = from;
          messages.forEach(function (m) {
            if (!m || typeof m.id !== "number") return;
            record.ids.push(m.id);
            if (options.insert(m)) record.added += 1;
            last = Math.max(last, m.id);
          });
          record.pages += 1;
          if (data && data.more === true && last > from) {
            if (record.pages < maxPages) return next(last);
            record.complete = false;
            console.warn("gap fill stopped after " + maxPages + " pages; reload for the rest");
          }
          fills.push(record);
          if (fills.length > 20) fills.shift();
          return record;
        });
      }
      return next(after).catch(function (err) {
        console.warn("gap fill failed", err);
        return null;
      });
    }

    function fill(after) {
      if (typeof after !== "number") after = Number(options.lastId()) || 0;
      if (!running) {
        running = run(after).finally(function () { running = null; });
        return running;
      }
      queuedAfter = queuedAfter === null ? after : Math.min(queuedAfter, after);
      if (!queued) {
        queued = running.then(function () {
          var from = queuedAfter;
          queued = null;
          queuedAfter = null;
          return fill(from);
        });
      }
      return queued;
    }

    return { fill: fill, fills: fills };
  }

  window.ChatGapFill = { create: create };
})();
