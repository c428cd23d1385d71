/*
 * One time format for the message list: the user's locale, hours and minutes
 * (Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit"}): "13:55" in en-GB, "01:55 PM"
 * in en-US). The server renders H:i (UTC) as the no-JavaScript fallback; chat.js reformats every
 * <time datetime="ISO 8601"> of #messages with formatAll() on load and formats live messages
 * with format(). Defines window.ChatTime:
 *
 *   ChatTime.format(iso)    -> the local time of an ISO 8601 string ("" when unparseable); the
 *                            no-break spaces some ICU versions put before AM/PM become plain spaces
 *   ChatTime.formatAll(root) sets the text of every time[datetime] under root (a parent element)
 *                            to format(its datetime); unparseable ones keep their text
 */
(function () {
  "use strict";

  var formatter = null;
  try {
    formatter = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  } catch (e) {
    formatter = null; // no Intl: toLocaleTimeString below
  }

  function format(iso) {
    var d = new Date(iso);
    if (!iso || isNaN(d.getTime())) return "";
    var text = formatter ? formatter.format(d) : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    // Newer ICU data puts a narrow no-break space before AM/PM: one plain space, as everywhere.
    return text.replace(/[\u202f\u00a0]/g, " ");
  }

  function formatAll(root) {
    if (!root) return;
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var text = format(el.getAttribute("datetime"));
      if (text) el.textContent = text;
    });
  }

  window.ChatTime = { format: format, formatAll: formatAll };
})();
