// Hands the Overview's charts to plotly.js for hover and zoom. The charts come drawn: the server renders each as an inline
// <svg class="chart-svg"> (evalapp/ui/svg_charts.py), so the first screen is complete on the first paint without this
// script; plotly then takes each chart over from the same figure (#overview-chart-data), at the same size and in the
// same colours, and the SVG steps aside (design note 50).
// When: plotly.js (its basic bundle, 1.2 MB, ~0.3 MB sent with brotli; ~250 ms of script evaluation on this machine)
// is fetched once the page has loaded and the browser is idle, or at once when the pointer or the keyboard reaches a
// chart first, so it never competes with the first paint; charts below the fold are taken over only as they come
// into view. Once plotly is there (a later htmx tab swap or range change), charts are taken over right away.
// Runs on a full page load, after an htmx swap that brings the chart data, and after a back/forward restore from
// htmx's history cache. Before htmx saves the page for the back button, the SVGs are put back in place of plotly's
// charts (a few kilobytes instead of hundreds in sessionStorage), so a restore shows the charts at once too.
// The figures come from the json_script #overview-chart-data, plotly's address from <body data-plotly-src> (no
// inline script: the Content-Security-Policy allows scripts from our static files only).
(function () {
  var figures = [];
  var styles = null;

  // Figures name colours as CSS variables ("var(--ok)") so the charts use app.css's palette.
  function resolve(value) {
    if (typeof value === "string") {
      var match = /^var\((--[\w-]+)\)$/.exec(value);
      return match ? styles.getPropertyValue(match[1]).trim() : value;
    }
    if (Array.isArray(value)) return value.map(resolve);
    if (value && typeof value === "object") {
      var copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = resolve(value[key]); });
      return copy;
    }
    return value;
  }

  // Charts are taken over in animation frames, in page order, as they come within 200px of the viewport (each costs
  // plotly tens of milliseconds; those below the fold cost nothing until they are scrolled to: design note 46).
  function draw() {
    if (!document.getElementById("overview-chart-data")) return;  // another page or tab by the time plotly loaded
    forget();
    // Charts follow their card's width (window resizes, and the grid settling after a tab swap's CSS applies). The
    // observer also reports each chart once as it starts watching it, at the width it was drawn at: that report is
    // passed over, as plotly would lay the chart out again for nothing.
    var widths = new WeakMap();
    var resizer = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.target.isConnected || widths.get(entry.target) === entry.contentRect.width) return;
        widths.set(entry.target, entry.contentRect.width);
        window.Plotly.Plots.resize(entry.target);
      });
    });
    var drawn = {resizer: resizer, visible: null, elements: [], queue: [], frame: 0};
    var byHolder = new Map();
    figures.forEach(function (figure) {
      var holder = document.getElementById(figure.id);
      if (holder) byHolder.set(holder, figure);
    });

    function drawOne(holder) {
      // Plot into a fresh child without an id (htmx's settle step resets the class of elements whose id was on the
      // page before the swap, which would strip plotly's own classes from the holder), laid over the SVG; the SVG
      // is taken out, and kept for the history snapshot, once plotly's chart is in (in the same task: no frame shows
      // both or neither).
      var figure = byHolder.get(holder);
      var element = document.createElement("div");
      element.className = "chart-plotly";
      holder.appendChild(element);
      var svg = holder.querySelector(":scope > svg.chart-svg");
      window.Plotly.newPlot(element, resolve(figure.data), resolve(figure.layout), {displayModeBar: false}).then(function () {
        if (svg && element.isConnected) svg.remove();
      });
      widths.set(element, element.getBoundingClientRect().width);
      resizer.observe(element);
      drawn.elements.push({element: element, holder: holder, svg: svg});
    }

    // In an animation frame, so what it draws is painted right after: charts until 40 ms are spent, at least one.
    function drawNext(frameStart) {
      drawn.frame = 0;
      while (drawn.queue.length) {
        var holder = drawn.queue.shift();
        if (holder.isConnected) drawOne(holder);
        if (performance.now() - frameStart > 40) break;
      }
      if (drawn.queue.length) drawn.frame = requestAnimationFrame(drawNext);
    }

    drawn.visible = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        drawn.visible.unobserve(entry.target);
        drawn.queue.push(entry.target);
      });
      // Page order, whatever order the entries came in.
      drawn.queue.sort(function (a, b) { return a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1; });
      if (drawn.queue.length && !drawn.frame) drawn.frame = requestAnimationFrame(drawNext);
    }, {rootMargin: "200px 0px"});
    byHolder.forEach(function (figure, holder) { drawn.visible.observe(holder); });
    window.evalappOverviewCharts = drawn;
  }

  // Stops drawing what is queued, purges what plotly drew and puts the server's SVG back (before drawing again, and
  // before htmx saves the page).
  function forget() {
    var drawn = window.evalappOverviewCharts;
    if (!drawn) return;
    drawn.visible.disconnect();
    drawn.resizer.disconnect();
    if (drawn.frame) cancelAnimationFrame(drawn.frame);
    drawn.queue = [];
    drawn.elements.forEach(function (taken) {
      window.Plotly.purge(taken.element);
      taken.element.remove();
      if (taken.svg && !taken.svg.isConnected && taken.holder.isConnected) taken.holder.appendChild(taken.svg);
    });
    window.evalappOverviewCharts = null;
  }

  if (!window.evalappOverviewHistoryHook) {
    window.evalappOverviewHistoryHook = true;
    document.addEventListener("htmx:beforeHistorySave", forget);
  }

  function loadPlotly() {
    if (window.Plotly) { draw(); return; }
    var loader = document.getElementById("plotly-js");
    if (!loader) {
      loader = document.createElement("script");
      loader.id = "plotly-js";
      loader.src = document.body.dataset.plotlySrc;
      document.head.appendChild(loader);
    }
    loader.addEventListener("load", draw, {once: true});
  }

  // After the page's load event, when the browser is next idle (within 2 s whatever happens), or on the first
  // pointer or focus on the Overview: whichever comes first, once per page.
  var waiting = null;
  function whenIdleOrWanted() {
    if (waiting) return;
    var overview = document.getElementById("overview");
    var go = function () {
      if (!waiting) return;
      overview.removeEventListener("pointerover", go);
      overview.removeEventListener("focusin", go);
      waiting = null;
      loadPlotly();
    };
    waiting = go;
    overview.addEventListener("pointerover", go);
    overview.addEventListener("focusin", go);
    var idle = function () { window.requestIdleCallback ? requestIdleCallback(go, {timeout: 2000}) : setTimeout(go, 200); };
    if (document.readyState === "complete") idle();
    else window.addEventListener("load", idle, {once: true});
  }

  function start() {
    var source = document.getElementById("overview-chart-data");
    if (!source) return;
    figures = JSON.parse(source.textContent);
    styles = getComputedStyle(document.documentElement);
    if (window.Plotly) { draw(); return; }
    whenIdleOrWanted();
  }

  // htmx:load comes for the page (on <body>) and for each element an htmx swap brings (the Overview tab, a new
  // range); htmx:historyRestore for a back/forward restore from htmx's history cache. A restore brings both, so
  // the drawing waits for the events of one moment to pass and runs once.
  var scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(function () { scheduled = false; start(); }, 0);
  }
  document.addEventListener("htmx:load", function (event) {
    var element = event.target;
    if (element.id === "overview-chart-data" || (element.querySelector && element.querySelector("#overview-chart-data"))) schedule();
  });
  document.addEventListener("htmx:historyRestore", schedule);
})();
