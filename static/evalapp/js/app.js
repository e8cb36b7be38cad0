// Small behaviours every page may need, written here rather than in templates: the Content-Security-Policy
// allows scripts from our static files only, so no inline <script>, no onclick=, and no htmx hx-on or
// [filter] triggers (htmx evaluates those with Function(), which would need 'unsafe-eval').
(function () {
  // A clickable row (data-open-on-click) opens what its hx-get points at, unless the click was on a link, a checkbox or its label in it
  // (the link goes where it says). The row's hx-trigger is "open-row".
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("[data-open-on-click]");
    if (!row || event.target.closest("a, input, label") || !window.htmx) return;
    window.htmx.trigger(row, "open-row");
  });

  // Polls marked data-poll-when-visible skip their request while the browser tab is hidden.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (element && element.hasAttribute && element.hasAttribute("data-poll-when-visible") && document.visibilityState !== "visible") {
      event.preventDefault();
    }
  });

  // An element marked data-remove-after-request goes away once its request succeeded (the "New experiment"
  // button, replaced by the form it fetched).
  document.addEventListener("htmx:afterRequest", function (event) {
    var element = event.detail.elt;
    if (element && element.hasAttribute && element.hasAttribute("data-remove-after-request") && event.detail.successful) element.remove();
  });
})();
