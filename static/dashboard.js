// The dashboard's chart: requests/s and p50/p99 latency per minute over the last hour (uPlot), in UTC,
// value axes from zero (static/charts.js).
// The numbers come from <script type="application/json" id="dash-data"> in the part of the page that htmx
// refreshes every few seconds; after each refresh the chart takes the new numbers.
(function () {
  "use strict";
  var chart = null;

  function width(box) { return Math.max(260, Math.min(box.clientWidth || 600, 1100)); }

  function draw() {
    var node = document.getElementById("dash-data");
    var box = document.getElementById("dash-chart");
    var figure = document.getElementById("dash-figure");
    var c = window.FlashMLCharts;
    if (!node || !box || typeof uPlot === "undefined" || !c) return;
    var d = JSON.parse(node.textContent);
    figure.hidden = !d.requests;
    if (!d.requests) return;
    var data = [d.t, d.rps, d.p50, d.p99];
    if (chart) { chart.setData(data); return; }
    chart = c.keep(box, new uPlot({
      width: width(box),
      height: 280,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },  // the console says UTC
      scales: { x: { time: true }, rps: { range: c.fromZero }, ms: { range: c.fromZero } },
      axes: [
        { values: c.timeTicks },  // 24-hour UTC, as every other time in the console (uPlot's default: 3pm)
        { scale: "rps", label: "Requests/s", size: 60, values: c.shortTicks },
        { scale: "ms", label: "Latency (ms)", side: 1, size: 60, grid: { show: false }, values: c.shortTicks }
      ],
      series: [
        { label: "Minute (UTC)", value: function (u, ts) { return c.hhmm(ts); } },
        { label: "Requests/s", scale: "rps", stroke: "#0b5cad", fill: "rgba(11,92,173,0.08)", width: 2,
          points: { show: false } },
        { label: "p50 (ms)", scale: "ms", stroke: "#116329", width: 2, spanGaps: true },
        // Minutes without answers have no latency (null): join the minutes around them, or a sparse p99 is
        // a scatter of dots.
        { label: "p99 (ms)", scale: "ms", stroke: "#b3261e", width: 2, dash: [6, 4], spanGaps: true }
      ]
    }, data, box));
    window.addEventListener("resize", function () { chart.setSize({ width: width(box), height: 280 }); });
  }

  // A refresh replaces the per-minute table too: keep it open when the reader opened it.
  var minutesOpen = false;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var details = document.getElementById("dash-minutes");
    if (e.target && e.target.id === "dash-live") minutesOpen = !!(details && details.open);
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (!e.target || e.target.id !== "dash-live") return;
    var details = document.getElementById("dash-minutes");
    if (details && minutesOpen) details.open = true;
    draw();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
