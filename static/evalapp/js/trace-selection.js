// Row selection for bulk actions (the Traces tab's "Add to dataset"), with no inline script (a CSP forbids them).
// Everything is delegated from the document, so it works on tables htmx swaps in later.
//   <input type="checkbox" data-select-all="trace_ids">        ticks or clears every box named trace_ids
//   <span data-selection-count="trace_ids">0</span>            shows how many are ticked
//   <button data-needs-selection="trace_ids">                  disabled while none is
//   <select data-new-dataset-toggle="<id of an input>">       shows that input only when "new" is chosen
(function () {
  "use strict";

  function boxes(name) {
    return Array.from(document.querySelectorAll('input[type="checkbox"][name="' + name + '"]'));
  }

  function refresh() {
    document.querySelectorAll("[data-selection-count]").forEach(function (counter) {
      counter.textContent = String(boxes(counter.dataset.selectionCount).filter(function (box) { return box.checked; }).length);
    });
    document.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !boxes(button.dataset.needsSelection).some(function (box) { return box.checked; });
    });
    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      var named = boxes(all.dataset.selectAll);
      var ticked = named.filter(function (box) { return box.checked; }).length;
      all.checked = named.length > 0 && ticked === named.length;
      all.indeterminate = ticked > 0 && ticked < named.length;
    });
    document.querySelectorAll("[data-new-dataset-toggle]").forEach(function (select) {
      var input = document.getElementById(select.dataset.newDatasetToggle);
      if (input) { input.hidden = select.value !== "new"; }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      boxes(target.dataset.selectAll).forEach(function (box) { box.checked = target.checked; });
    }
    refresh();
  });
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
})();
