// The labelling queue's keys (templates/evalapp/judges/label.html): every element with data-key="<key>" is
// clicked when that key is pressed — an answer button, Skip, ← / → links. "c" goes to the comment; Esc leaves it.
// One listener on the document, active only while a [data-labelling] page is shown (it may arrive by htmx).
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var page = document.querySelector("[data-labelling]");
    if (!page || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var typing = event.target.closest && event.target.closest("input, textarea, select");
    if (typing) {
      if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (event.key === "c") {
      var comment = page.querySelector("[data-comment]");
      if (comment) {
        event.preventDefault();
        comment.focus();
      }
      return;
    }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var target = page.querySelector('[data-key="' + (window.CSS && CSS.escape ? CSS.escape(key) : key) + '"]');
    if (target) {
      event.preventDefault();
      target.click();
    }
  });
})();
