// What the console's charts share (uPlot): times written as the rest of the console writes them (24-hour,
// UTC), value axes that start at zero (a 0.0059-0.006 ms axis makes a rounding step look like a cliff), short
// numbers, and a list of the drawn charts by their box's id (the browser tests read their axes from it).
(function () {
  "use strict";

  function two(n) { return (n < 10 ? "0" : "") + n; }

  // Seconds since the epoch as HH:MM in UTC, whatever the browser's own zone and 12/24-hour habit.
  function hhmm(ts) {
    if (ts == null) return "–";
    var d = new Date(ts * 1e3);
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
  }

  function short(v) {
    if (v == null) return "–";
    var a = Math.abs(v);
    if (a >= 1e9) return Number((v / 1e9).toPrecision(3)) + "G";
    if (a >= 1e6) return Number((v / 1e6).toPrecision(3)) + "M";
    if (a >= 1e3) return Number((v / 1e3).toPrecision(3)) + "k";
    return String(Number(v.toPrecision(3)));
  }

  window.FlashMLCharts = {
    byId: {},
    hhmm: hhmm,
    short: short,
    // uPlot scale ranges: from zero to a little above the largest value (1 when there is none yet).
    fromZero: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; },
    // Axis tick labels.
    timeTicks: function (u, ticks) { return ticks.map(hhmm); },
    shortTicks: function (u, ticks) { return ticks.map(short); },
    keep: function (box, chart) {
      if (box.id) window.FlashMLCharts.byId[box.id] = chart;
      return chart;
    }
  };
})();
