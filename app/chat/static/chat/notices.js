/*
 * Notices for the signed-in user (chatsite-manage notify_user --text, chat.realtime.notify_user
 * with {"type": "notice", "text": str}), shown on the index and room pages in #notices as
 * <li class="notice">text</li>, newest last (the oldest is dropped beyond 20). Defines
 * window.ChatNotices.create(listEl) -> notices:
 *
 *   notices.handle(data) -> true if data was a notice (and is now shown), false for anything
 *                           else (e.g. {"type": "room_activity", ...}, left to the caller)
 *   notices.shown         number of notices shown since the page loaded
 *
 * Sources: Centrifugo personal-channel publications (centrifugo-client.js onPersonal) or the
 * Channels {"type": "notification", "data": data} frames (chat.consumers).
 */
(function () {
  "use strict";

  var MAX_NOTICES = 20;

  function create(listEl) {
    var notices = { shown: 0 };
    notices.handle = function (data) {
      if (!data || data.type !== "notice" || typeof data.text !== "string") return false;
      if (!listEl) return true;
      var li = document.createElement("li");
      li.className = "notice";
      li.textContent = data.text;
      listEl.appendChild(li);
      while (listEl.children.length > MAX_NOTICES) listEl.removeChild(listEl.firstElementChild);
      notices.shown += 1;
      return true;
    };
    return notices;
  }

  window.ChatNotices = { create: create };
})();
