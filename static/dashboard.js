// The dashboard's chart: requests/s and p50/p99 latency per minute over the last hour (uPlot).
// The numbers come from <script type="application/json" id="dash-data"> in the part of the page that htmx
// refreshes every few seconds; after each refresh the chart takes the new numbers.
(function () {
  "use strict";
  var chart = null;

  function width(box) { return Math.max(260, Math.min(box.clientWidth || 600, 1100)); }

  function short(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return Number((v / 1e6).toPrecision(3)) + "M";
    if (a >= 1e3) return Number((v / 1e3).toPrecision(3)) + "k";
    return Number(v.toPrecision(3));
  }

  function draw() {
    var node = document.getElementById("dash-data");
    var box = document.getElementById("dash-chart");
    var figure = document.getElementById("dash-figure");
    if (!node || !box || typeof uPlot === "undefined") return;
    var d = JSON.parse(node.textContent);
    figure.hidden = !d.requests;
    if (!d.requests) return;
    var data = [d.t, d.rps, d.p50, d.p99];
    if (chart) { chart.setData(data); return; }
    chart = new uPlot({
      width: width(box),
      height: 280,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },  // the console says UTC
      scales: { x: { time: true }, rps: {}, ms: {} },
      axes: [
        {},
        { scale: "rps", label: "Requests/s", size: 60, values: function (u, t) { return t.map(short); } },
        { scale: "ms", label: "Latency (ms)", side: 1, size: 60, grid: { show: false },
          values: function (u, t) { return t.map(short); } }
      ],
      series: [
        { label: "Minute (UTC)" },
        { label: "Requests/s", scale: "rps", stroke: "#0b5cad", fill: "rgba(11,92,173,0.08)", width: 2,
          points: { show: false } },
        { label: "p50 (ms)", scale: "ms", stroke: "#116329", width: 2, spanGaps: false },
        { label: "p99 (ms)", scale: "ms", stroke: "#b3261e", width: 2, dash: [6, 4], spanGaps: false }
      ]
    }, data, box);
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
