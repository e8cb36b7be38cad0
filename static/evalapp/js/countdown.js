// Ticks every "judged in 2:41" ([data-seconds-left]) down once a second between polls. One timer for the whole
// page, started once: it looks the elements up on every tick, so rows swapped in by htmx count down too. The deadline is
// taken from the seconds the server said were left when the element arrived, so a wrong client clock does not matter.
(function () {
  if (window.evalappCountdown) return;
  function format(seconds) {
    var hours = Math.floor(seconds / 3600), minutes = Math.floor((seconds % 3600) / 60), secs = seconds % 60;
    var mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-seconds-left]").forEach(function (element) {
      if (!element.dataset.deadline) element.dataset.deadline = String(now + Number(element.dataset.secondsLeft) * 1000);
      var left = Math.max(0, Math.round((Number(element.dataset.deadline) - now) / 1000));
      element.textContent = left > 0 ? (element.dataset.countdownPrefix || "") + format(left) : "judging soon";
    });
  }
  window.evalappCountdown = setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);  // start new countdowns at once, not up to a second late
  document.addEventListener("DOMContentLoaded", tick);
})();
