// The operator's console: live figures from /operator/console/stream (server-sent events)
// drawn with uPlot (served by the app, /static/vendor/uplot). No inline script: the pages'
// Content-Security-Policy allows scripts from this origin only.
(function () {
  "use strict";
  var holder = document.getElementById("console-figures");
  if (!holder || !window.EventSource) { return; }
  var first = JSON.parse(holder.getAttribute("data-figures"));
  // The page's words for the live lists, in the visitor's language (data-words).
  var words = JSON.parse(holder.getAttribute("data-words") || "{}");
  function say(key, values) {
    return (words[key] || key).replace(/%\((\w+)\)s/g, function (_, name) {
      return String(values[name]);
    });
  }
  var rpsTimes = [], rpsValues = [], KEEP = 300;
  // Times on the charts in the hospital's zone (data-zone) and the page's language: the
  // browser's own zone and uPlot's US formats would show another clock than the page.
  var zone = holder.getAttribute("data-zone") || undefined;
  var lang = document.documentElement.lang || undefined;
  function formatter(options) {
    try {
      return new Intl.DateTimeFormat(lang, Object.assign({timeZone: zone}, options));
    } catch (e) {
      return new Intl.DateTimeFormat(lang, options);
    }
  }
  var clock = formatter({hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  var day = formatter({month: "short", day: "numeric"});
  var moment = formatter({month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                          second: "2-digit", hourCycle: "h23"});
  function axisTimes(u, splits) {
    return splits.map(function (t, i) {
      var when = new Date(t * 1000);
      return clock.format(when) + (i === 0 ? "\n" + day.format(when) : "");
    });
  }
  function legendTime(u, t) {
    return t === null || t === undefined ? "--" : moment.format(new Date(t * 1000));
  }

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }
  function list(id, items) {
    var el = document.getElementById(id);
    if (!el) { return; }
    el.textContent = "";
    if (!items.length) { items = [say("none", {})]; }
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item;
      el.appendChild(li);
    });
  }
  // Each refusal reason as its label in the page's language, its code beside it (the code
  // names the reason in docs/guard.md), then its count.
  function refusals(counts) {
    var el = document.getElementById("fig-refusals");
    if (!el) { return; }
    var codes = Object.keys(counts);
    if (!codes.length) { list("fig-refusals", []); return; }
    el.textContent = "";
    codes.forEach(function (code) {
      var li = document.createElement("li"), tag = document.createElement("code");
      var strong = document.createElement("strong");
      var label = words["reason:" + code];
      li.appendChild(document.createTextNode((label || code) + " "));
      tag.className = "code-tag"; tag.setAttribute("lang", "en"); tag.textContent = code;
      li.appendChild(tag);
      strong.textContent = String(counts[code]);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(strong);
      el.appendChild(li);
    });
  }
  // The time axis ends at the newest point and spans the data, but never less than
  // ``least`` seconds: with one point (the page just opened) uPlot's own range is a year
  // around it, with two a second apart it is one second.
  function timeRange(least) {
    return function (u, min, max) {
      if (max === null || max === undefined || !isFinite(max)) { max = Date.now() / 1000; }
      if (min === null || min === undefined || !isFinite(min) || max - min < least) {
        min = max - least;
      }
      // (a little room on the right, so the newest point is not drawn on the border)
      return [min, max + (max - min) / 40];
    };
  }
  // Rates are never negative; all zeros still show a 0-1 axis, not -100 to 100.
  function rateRange(u, min, max) {
    return [0, Math.max(1, (max || 0) * 1.1)];
  }
  // uPlot skips the range function for a time axis with a single point (it shows the
  // years after it): the axis is set after every update, from the data, the same way.
  function fitX(u, least) {
    if (!u) { return; }
    var xs = u.data[0];
    var max = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
    var range = timeRange(least)(u, xs.length ? xs[0] : max, max);
    u.setScale("x", {min: range[0], max: range[1]});
  }
  function chart(id, series, data, least) {
    var el = document.getElementById(id);
    if (!el || !window.uPlot) { return null; }
    return new window.uPlot({
      width: Math.max(260, el.clientWidth || 320), height: 140, legend: {show: true},
      series: series, axes: [{values: axisTimes}, {}],
      tzDate: function (t) {
        return zone ? window.uPlot.tzDate(new Date(t * 1000), zone) : new Date(t * 1000);
      },
      scales: {x: {time: true, range: timeRange(least)}, y: {range: rateRange}},
      // The span shown, on the chart's element (read by the browser test).
      hooks: {setScale: [function (u, key) {
        if (key === "x") {
          el.setAttribute("data-x-min", String(u.scales.x.min));
          el.setAttribute("data-x-max", String(u.scales.x.max));
        }
      }]}
    }, data, el);
  }
  function minutes(f) {
    var n = f.bookings_per_minute.length, end = Date.parse(f.at) / 1000, xs = [];
    for (var i = 0; i < n; i++) { xs.push(end - (n - 1 - i) * 60); }
    return [xs, f.bookings_per_minute, f.cancellations_per_minute];
  }
  var rpsChart = null, bookChart = null;
  function draw(f) {
    var t = Date.parse(f.at) / 1000;
    if (!rpsTimes.length || rpsTimes[rpsTimes.length - 1] !== t) {
      rpsTimes.push(t); rpsValues.push(f.requests_per_second);
    }
    if (rpsTimes.length > KEEP) { rpsTimes.shift(); rpsValues.shift(); }
    text("fig-rps", f.requests_per_second);
    text("fig-booked", f.bookings_per_minute[f.bookings_per_minute.length - 1]);
    text("fig-cancelled", f.cancellations_per_minute[f.cancellations_per_minute.length - 1]);
    refusals(f.refusals);
    list("fig-entries", f.entries.map(function (r) {
      return say("entry", {round: r.round, department: r.department_name || r.department,
                           entries: r.entries, closes: r.closes || r.closes_at});
    }));
    list("fig-top", f.top_ips.map(function (x) { return "IP " + x[0] + " " + x[1]; })
      .concat(f.top_accounts.map(function (x) { return say("account", {n: x[0]}) + " " + x[1]; })));
    if (f.open_alerts !== undefined) { text("fig-open-alerts", f.open_alerts); }
    if (f.active_decisions !== undefined) { text("fig-active-decisions", f.active_decisions); }
    if (rpsChart) { rpsChart.setData([rpsTimes, rpsValues]); fitX(rpsChart, 300); }
    if (bookChart) { bookChart.setData(minutes(f)); fitX(bookChart, 1800); }
  }
  window.addEventListener("load", function () {
    // req/s: at least the last five minutes (it keeps ten at one point every two seconds);
    // bookings per minute: at least the last half hour.
    // (its first few samples, seconds apart on a five-minute axis, are drawn as points)
    // (made with the page's first point)
    rpsTimes.push(Date.parse(first.at) / 1000); rpsValues.push(first.requests_per_second);
    rpsChart = chart("chart-rps", [{label: say("time", {}), value: legendTime},
                                   {label: say("rate", {}), stroke: "#2563eb", points: {
      size: 6, show: function (u, i, first, last) { return last - first < 15; }}}],
                     [rpsTimes, rpsValues], 300);
    bookChart = chart("chart-bookings", [{label: say("time", {}), value: legendTime}, {label: say("booked", {}), stroke: "#16a34a"},
                                         {label: say("cancelled", {}), stroke: "#dc2626"}],
                      minutes(first), 1800);
    draw(first);
    var source = new EventSource("/operator/console/stream");
    source.addEventListener("figures", function (e) {
      text("console-live", "● " + say("live", {}));
      draw(JSON.parse(e.data));
    });
    source.onerror = function () { text("console-live", "○ " + say("reconnecting", {})); };
  });
}());
