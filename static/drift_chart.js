// Drift scores over time as a chart per version: one line per feature (PSI per round) and the threshold as a
// dashed red line, in 24-hour UTC with the value axis from zero (static/charts.js). The numbers come from
// <script type="application/json" id="drift-data-vN">: {"t": [...], "threshold": 0.2, "series": [{"label", "scores"}]}.
(function () {
  "use strict";

  // Features in colours that stay apart on white; more features than colours reuse them with a dash.
  var COLOURS = ["#0b5cad", "#116329", "#8a4baf", "#b35900", "#00727a", "#6b6b6b", "#a3195b", "#4a5d00"];

  function drawOne(box) {
    var data = document.getElementById(box.getAttribute("data-source"));
    var c = window.FlashMLCharts;
    if (!data || box.getAttribute("data-drawn")) return;
    var d = JSON.parse(data.textContent);
    if (!d.t.length) return;
    box.setAttribute("data-drawn", "yes");
    if (d.t.length === 1) {
      // One round is one instant: a time axis with no span to label, and a threshold of one point draws no line.
      // Five minutes either side (no scores there) give the axis its span and the threshold its line.
      d.t = [d.t[0] - 300, d.t[0], d.t[0] + 300];
      d.series.forEach(function (s) { s.scores = [null, s.scores[0], null]; });
    }
    var series = [{ label: "Round (UTC)", value: function (u, ts) { return c.hhmm(ts); } }];
    var columns = [d.t];
    d.series.forEach(function (s, i) {
      var line = { label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
                   points: { show: d.t.length < 40 } };
      if (i >= COLOURS.length) line.dash = [2, 3];
      series.push(line);
      columns.push(s.scores);
    });
    series.push({ label: "Threshold", stroke: "#b3261e", width: 2, dash: [8, 5], points: { show: false } });
    columns.push(d.t.map(function () { return d.threshold; }));
    function width() { return Math.max(260, Math.min(box.clientWidth || 600, 1100)); }
    var chart = c.keep(box, new uPlot({
      width: width(),
      height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },  // the console says UTC
      scales: { x: { time: true }, y: { range: c.fromZero } },
      axes: [{ values: c.timeTicks }, { label: "Drift score (PSI)", size: 60, values: c.shortTicks }],
      series: series
    }, columns, box));
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 260 }); });
  }

  function draw() {
    if (typeof uPlot === "undefined" || !window.FlashMLCharts) return;
    Array.prototype.forEach.call(document.querySelectorAll(".drift-chart"), drawOne);
  }

  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
