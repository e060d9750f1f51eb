// The performance card as a chart: latency (ms) and throughput (rows/s) against batch size.
// The numbers come from <script type="application/json" id="perf-data">; the page has them as a table too.
(function () {
  "use strict";

  function short(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return Number((v / 1e9).toPrecision(3)) + "G";
    if (a >= 1e6) return Number((v / 1e6).toPrecision(3)) + "M";
    if (a >= 1e3) return Number((v / 1e3).toPrecision(3)) + "k";
    return Number(v.toPrecision(3));
  }

  function draw() {
    var data = document.getElementById("perf-data");
    var box = document.getElementById("perf-chart");
    if (!data || !box || typeof uPlot === "undefined") return;
    var card = JSON.parse(data.textContent);
    var points = (card && card.points) || [];
    if (!points.length) return;
    var sizes = points.map(function (p) { return p.batch_size; });
    var latency = points.map(function (p) { return p.latency_ms; });
    var throughput = points.map(function (p) { return p.throughput; });
    function width() { return Math.max(260, Math.min(box.clientWidth || 600, 900)); }
    var opts = {
      width: width(),
      height: 280,
      scales: { x: { time: false, distr: 3, log: 2 }, ms: {}, rps: {} },
      axes: [
        { label: "Batch size", values: function (u, ticks) { return ticks.map(String); } },
        { scale: "ms", label: "Latency (ms)", size: 64,
          values: function (u, ticks) { return ticks.map(function (v) { return Number(v.toPrecision(3)); }); } },
        { scale: "rps", label: "Throughput (rows/s)", side: 1, size: 64, grid: { show: false },
          values: function (u, ticks) { return ticks.map(short); } }
      ],
      series: [
        { label: "Batch size" },
        { label: "Latency (ms)", scale: "ms", stroke: "#b3261e", width: 2, points: { show: true } },
        { label: "Throughput (rows/s)", scale: "rps", stroke: "#0b5cad", width: 2, dash: [6, 4],
          points: { show: true } }
      ]
    };
    var chart = new uPlot(opts, [sizes, latency, throughput], box);
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 280 }); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
