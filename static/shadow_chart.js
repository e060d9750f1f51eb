// Shadow traffic as a chart per alias: served and shadow latency (ms) and the largest absolute difference,
// for the latest mirrored requests, latency from zero. The numbers come from <script type="application/json" id="shadow-data-...">.
(function () {
  "use strict";

  function drawOne(box) {
    var data = document.getElementById(box.getAttribute("data-source"));
    if (!data || box.getAttribute("data-drawn")) return;
    var recent = JSON.parse(data.textContent).filter(function (e) { return e.shadow_ms !== undefined; });
    if (!recent.length) return;
    var x = recent.map(function (e, i) { return i + 1; });
    var served = recent.map(function (e) { return e.primary_ms; });
    var shadow = recent.map(function (e) { return e.shadow_ms; });
    var diff = recent.map(function (e) { return e.max_abs_diff; });
    var c = window.FlashMLCharts;
    box.setAttribute("data-drawn", "yes");
    function width() { return Math.max(260, Math.min(box.clientWidth || 600, 900)); }
    var opts = {
      width: width(),
      height: 240,
      scales: { x: { time: false }, ms: { range: c.fromZero }, diff: { range: c.fromZero } },
      axes: [
        { label: "Mirrored request (oldest first)" },
        { scale: "ms", label: "Latency (ms)", size: 64, values: c.shortTicks },
        { scale: "diff", label: "Largest difference", side: 1, size: 64, grid: { show: false }, values: c.shortTicks }
      ],
      series: [
        { label: "Request" },
        { label: "Served (ms)", scale: "ms", stroke: "#0b5cad", width: 2, points: { show: true } },
        { label: "Shadow (ms)", scale: "ms", stroke: "#b3261e", width: 2, points: { show: true } },
        { label: "Largest difference", scale: "diff", stroke: "#6b6b6b", width: 1, dash: [6, 4] }
      ]
    };
    var chart = c.keep(box, new uPlot(opts, [x, served, shadow, diff], box));
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 240 }); });
  }

  function draw() {
    if (typeof uPlot === "undefined" || !window.FlashMLCharts) return;
    Array.prototype.forEach.call(document.querySelectorAll(".shadow-chart"), drawOne);
  }

  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
