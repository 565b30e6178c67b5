// Follows the order live: when the server says its record changed, fetch the page again and
// put its new content in place (no reload: what is typed in a form on the page stays put).
(function () {
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) return;
  var source = new EventSource(main.getAttribute("data-live"));
  source.addEventListener("changed", function () {
    if (document.querySelector("main form.busy")) return;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var typing = main.querySelector("input:focus, textarea:focus");
        if (fresh && !typing) main.innerHTML = fresh.innerHTML;
      });
  });
  document.addEventListener("submit", function (e) { e.target.classList.add("busy"); });
})();
