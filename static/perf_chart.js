// Performance cards as charts: latency (ms) and throughput (rows/s) against batch size, both from zero.
// Every .perf-chart names its numbers in data-source (a <script type="application/json">, also shown as a
// table); the model page has one on its overview and two when versions are compared, and htmx swaps tabs in.
(function () {
  "use strict";

  function drawOne(box) {
    var data = document.getElementById(box.getAttribute("data-source"));
    if (!data || box.getAttribute("data-drawn")) return;
    var card = JSON.parse(data.textContent);
    var points = (card && card.points) || [];
    if (!points.length) return;
    box.setAttribute("data-drawn", "yes");
    var c = window.FlashMLCharts;
    var sizes = points.map(function (p) { return p.batch_size; });
    var latency = points.map(function (p) { return p.latency_ms; });
    var throughput = points.map(function (p) { return p.throughput; });
    function width() { return Math.max(260, Math.min(box.clientWidth || 600, 900)); }
    var opts = {
      width: width(),
      height: 280,
      scales: { x: { time: false, distr: 3, log: 2 }, ms: { range: c.fromZero }, rps: { range: c.fromZero } },
      axes: [
        { label: "Batch size", values: function (u, ticks) { return ticks.map(String); } },
        { scale: "ms", label: "Latency (ms)", size: 64, values: c.shortTicks },
        { scale: "rps", label: "Throughput (rows/s)", side: 1, size: 64, grid: { show: false }, values: c.shortTicks }
      ],
      series: [
        { label: "Batch size" },
        { label: "Latency (ms)", scale: "ms", stroke: "#b3261e", width: 2, points: { show: true } },
        { label: "Throughput (rows/s)", scale: "rps", stroke: "#0b5cad", width: 2, dash: [6, 4],
          points: { show: true } }
      ]
    };
    var chart = c.keep(box, new uPlot(opts, [sizes, latency, throughput], box));
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 280 }); });
  }

  function draw() {
    if (typeof uPlot === "undefined" || !window.FlashMLCharts) return;
    Array.prototype.forEach.call(document.querySelectorAll(".perf-chart[data-source]"), drawOne);
  }

  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
