// The feed page's live updates: new Thing announcements from the node's
// SSE feed (/v1/feed), filtered as the page is, added at the top. The page
// works without this script; it only saves a reload.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var list = document.getElementById("feed");
  if (!live || !list || !window.EventSource) return;
  var f = live.dataset;
  var url = "/v1/feed?since=" + encodeURIComponent(f.since) + (f.tracker ? "&tracker=" + encodeURIComponent(f.tracker) : "");
  var src = new EventSource(url);
  src.onopen = function () { live.hidden = false; };
  src.onerror = function () { live.hidden = true; };
  function el(tag, cls, text, href) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (href) e.href = href;
    return e;
  }
  function short(s) { return s.length <= 14 ? s : s.slice(0, 6) + "\u2026" + s.slice(-4); }
  function thingURL(tracker, id) { return "/things/" + tracker + "/" + id.split("/").map(encodeURIComponent).join("/"); }
  src.onmessage = function (ev) {
    var e;
    try { e = JSON.parse(ev.data); } catch (err) { return; }
    if (e.void || e.kind !== "thing" || !e.announcement || !e.announcement.thing) return;
    var t = e.announcement.thing;
    if (f.author && e.author !== f.author) return;
    if (f.tag && !(t.tags || []).some(function (x) { return x.toLowerCase() === f.tag.toLowerCase(); })) return;
    var li = el("li", "new");
    li.appendChild(el("a", "title", t.title || t.id, thingURL(e.tracker, t.id)));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "version", t.version));
    var meta = el("span", "meta", " on ");
    meta.appendChild(el("a", "", short(e.tracker), "/trackers/" + e.tracker));
    meta.appendChild(document.createTextNode(" by "));
    meta.appendChild(el("a", "", short(e.author), "/nodes/" + encodeURIComponent(e.author)));
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(el("span", "trust t-" + (e.trust || "unknown"), e.trust || "unknown"));
    meta.appendChild(document.createTextNode(" \u00b7 just now"));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(meta);
    var empty = document.getElementById("empty");
    if (empty) empty.remove();
    list.insertBefore(li, list.firstChild);
  };
})();
