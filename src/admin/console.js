// Live parts of the console. Every 2 s it reads /api/status (the cluster, counters, refusals),
// what is new in /api/history (the plots) and /api/events (the timeline), and redraws them.
// Only textContent and SVG attributes are set, never markup, because names and statements come
// from clients; colours live in console.css, so the page's strict CSP allows everything here.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  // A plot's viewBox and the margins of its drawing area.
  var W = 720, H = 190, LEFT = 50, RIGHT = 10, TOP = 10, BOTTOM = 22;
  // The events' strip spans the page: wider, so that its text is not scaled up.
  var TIMELINE_W = 1100, TIMELINE_H = 44;
  var WINDOW_MS = 15 * 60 * 1000;
  // A plot shows at least this much time, so that a young node's few samples are not stretched.
  var MIN_SPAN_MS = 60 * 1000;
  var POLL_MS = 2000;
  // Events an operator should look at, and those that say something came back.
  var BAD = ["slave_dropped", "master_lost", "apply_stopped", "reload_failed", "ack_timeout", "lock_kill", "refusals"];
  var GOOD = ["slave_linked", "master_linked", "apply_resumed"];

  var hist = { interval: 1000, classes: [], outcomes: [], samples: [] };
  var events = [];
  var lastEvent = 0;
  var status = null;
  // Where the pointer is over each plot (a fraction of the drawing width), kept across redraws.
  var hover = {};

  function svg(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, String(attrs[k]));
    });
    if (parent) parent.appendChild(e);
    return e;
  }
  function label(parent, x, y, s, anchor, cls) {
    var t = svg("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    if (cls) t.setAttribute("class", cls);
    t.textContent = s;
    return t;
  }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "\u2014" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  // slave2 before slave10.
  function byName(a, b) {
    return a.localeCompare(b, undefined, { numeric: true });
  }
  // The master first, then the slaves by name.
  function ordered(rows) {
    return rows.slice().sort(function (a, b) {
      return (a.role === "master" ? 0 : 1) - (b.role === "master" ? 0 : 1) || byName(a.name, b.name);
    });
  }
  function clock(ms) {
    return new Date(ms).toISOString().substring(11, 19);
  }
  function num(v) {
    if (v === null || v === undefined || isNaN(v)) return "\u2014";
    if (Math.abs(v) >= 10000) return (v / 1000).toFixed(0) + "k";
    if (Math.abs(v) >= 1000) return (v / 1000).toFixed(1) + "k";
    if (Math.abs(v) >= 10 || v === Math.round(v)) return v.toFixed(0);
    return v.toFixed(1);
  }
  // The smallest of 1, 2, 5 × 10^n at or above v.
  function ceilNice(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  // The samples the plots show, and the time span they cover.
  function view() {
    var s = hist.samples;
    if (s.length === 0) return null;
    var t1 = s[s.length - 1].t;
    var t0 = Math.max(t1 - WINDOW_MS, s[0].t - hist.interval);
    if (t1 - t0 < MIN_SPAN_MS) t0 = t1 - MIN_SPAN_MS;
    return { t0: t0, t1: t1, samples: s.filter(function (x) { return x.t >= t0; }) };
  }
  function xOf(v, t, width) {
    return LEFT + ((t - v.t0) / (v.t1 - v.t0)) * ((width || W) - LEFT - RIGHT);
  }
  // A sample further from the previous one than this follows a pause: the lines break there.
  function broken(samples, i) {
    return i > 0 && samples[i].t - samples[i - 1].t > 2.5 * hist.interval;
  }
  function timeAxis(g, v, height, width) {
    var steps = [10, 30, 60, 120, 300, 600].map(function (s) { return s * 1000; });
    var step = steps.find(function (s) { return (v.t1 - v.t0) / s <= 6; }) || 900000;
    for (var t = Math.ceil(v.t0 / step) * step; t <= v.t1; t += step) {
      var x = xOf(v, t, width);
      svg("line", { x1: x, x2: x, y1: TOP, y2: height - BOTTOM, class: "grid" }, g);
      label(g, x, height - 6, clock(t).substring(0, step < 60000 ? 8 : 5), "middle");
    }
  }

  // Draws one plot: `series` are {name, cls, values[] (null for none)}, one value per sample
  // of `v`; stacked ones are drawn as areas on top of each other. `marks` are {i, text} drawn
  // as red dots at the top of sample i. `unit` follows values in the tooltip.
  function plot(id, v, series, opts) {
    var fig = document.getElementById("chart-" + id);
    if (!fig) return;
    var root = fig.querySelector("svg");
    root.replaceChildren();
    var legend = fig.querySelector(".legend");
    legend.replaceChildren();
    series.forEach(function (s) {
      var key = document.createElement("span");
      key.className = "key " + s.cls;
      key.textContent = s.name;
      legend.appendChild(key);
    });
    if (opts.marks) {
      var key = document.createElement("span");
      key.className = "key refused";
      key.textContent = "refused";
      legend.appendChild(key);
    }
    root.dataset.points = v ? String(v.samples.length) : "0";
    if (!v || series.length === 0) {
      label(root, W / 2, H / 2, opts.empty || "no samples yet", "middle");
      return;
    }
    var n = v.samples.length;
    var tops = new Array(n).fill(0);
    var max = 0;
    series.forEach(function (s) {
      s.values.forEach(function (val, i) {
        if (val === null) return;
        if (opts.stacked) {
          tops[i] += val;
          max = Math.max(max, tops[i]);
        } else {
          max = Math.max(max, val);
        }
      });
    });
    var ymax = ceilNice(max * 1.05);
    var yOf = function (val) {
      return H - BOTTOM - (val / ymax) * (H - TOP - BOTTOM);
    };
    var grid = svg("g", {}, root);
    for (var k = 0; k <= 4; k++) {
      var y = yOf((ymax * k) / 4);
      svg("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, class: "grid" }, grid);
      label(grid, LEFT - 4, y + 4, num((ymax * k) / 4), "end");
    }
    timeAxis(grid, v, H);
    svg("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM, class: "axis" }, grid);
    var base = new Array(n).fill(0);
    series.forEach(function (s) {
      var d = "";
      var runs = 0, points = 0, last = null, peak = null, open = false;
      if (opts.stacked) {
        // One closed area per unbroken run: along the top, then back along the base.
        var start = 0;
        var close = function (end) {
          if (end <= start) return;
          var top = "", back = "";
          for (var i = start; i < end; i++) {
            top += (i === start ? "M" : "L") + xOf(v, v.samples[i].t).toFixed(1) + "," + yOf(base[i] + s.values[i]).toFixed(1);
          }
          for (var j = end - 1; j >= start; j--) {
            back += "L" + xOf(v, v.samples[j].t).toFixed(1) + "," + yOf(base[j]).toFixed(1);
          }
          d += top + back + "Z";
          runs += 1;
        };
        for (var i = 0; i < n; i++) {
          if (broken(v.samples, i)) {
            close(i);
            start = i;
          }
        }
        close(n);
      } else {
        for (var i2 = 0; i2 < n; i2++) {
          var val = s.values[i2];
          if (val === null || broken(v.samples, i2)) open = false;
          if (val === null) continue;
          d += (open ? "L" : "M") + xOf(v, v.samples[i2].t).toFixed(1) + "," + yOf(val).toFixed(1);
          if (!open) runs += 1;
          open = true;
        }
      }
      s.values.forEach(function (val) {
        if (val === null) return;
        points += 1;
        peak = peak === null ? val : Math.max(peak, val);
      });
      for (var back = n - 1; back >= 0; back--) {
        if (s.values[back] !== null) {
          last = s.values[back];
          break;
        }
      }
      var path = svg("path", { d: d || "M0,0", class: (opts.stacked ? "area " : "line ") + s.cls }, root);
      // What the plot shows, in numbers, for tests and for anyone reading the page's DOM.
      path.dataset.series = s.name;
      path.dataset.points = String(points);
      path.dataset.runs = String(runs);
      path.dataset.gaps = String(Math.max(0, runs - 1));
      path.dataset.last = last === null ? "" : String(last);
      path.dataset.now = s.values[n - 1] === null ? "" : String(s.values[n - 1]);
      path.dataset.peak = peak === null ? "" : String(peak);
      if (opts.stacked) {
        s.values.forEach(function (val, i) {
          base[i] += val || 0;
        });
      }
    });
    (opts.marks || []).forEach(function (m) {
      var dot = svg("circle", { cx: xOf(v, v.samples[m.i].t), cy: Math.max(TOP + 3, yOf(base[m.i]) - 4), r: 3, class: "refused" }, root);
      svg("title", {}, dot).textContent = m.text;
    });
    pointer(id, root, v, series, opts);
  }

  // The hover cursor and tooltip of a plot: the sample nearest the pointer, its time and values.
  function pointer(id, root, v, series, opts) {
    var layer = svg("g", {}, root);
    var pad = svg("rect", { x: LEFT, y: TOP, width: W - LEFT - RIGHT, height: H - TOP - BOTTOM, fill: "transparent" }, root);
    var draw = function () {
      layer.replaceChildren();
      var f = hover[id];
      if (f === undefined) return;
      var t = v.t0 + f * (v.t1 - v.t0);
      var i = 0;
      v.samples.forEach(function (s, k) {
        if (Math.abs(s.t - t) < Math.abs(v.samples[i].t - t)) i = k;
      });
      var x = xOf(v, v.samples[i].t);
      svg("line", { x1: x, x2: x, y1: TOP, y2: H - BOTTOM, class: "cursor" }, layer);
      var lines = [clock(v.samples[i].t) + " UTC"];
      series.forEach(function (s) {
        lines.push(s.name + ": " + (s.values[i] === null ? "\u2014" : num(s.values[i]) + (opts.unit || "")));
      });
      if (opts.tip) lines = lines.concat(opts.tip(i));
      var tip = svg("g", { class: "tip" }, layer);
      var width = 12 + 7.2 * Math.max.apply(null, lines.map(function (l) { return l.length; }));
      var height = 8 + 15 * lines.length;
      var left = x + 8 + width > W ? x - 8 - width : x + 8;
      svg("rect", { x: left, y: TOP, width: width, height: height, rx: 3 }, tip);
      lines.forEach(function (l, k) {
        label(tip, left + 6, TOP + 17 + 15 * k, l);
      });
      tip.dataset.time = clock(v.samples[i].t);
    };
    pad.addEventListener("mousemove", function (e) {
      var box = root.getBoundingClientRect();
      var x = ((e.clientX - box.left) / box.width) * W;
      hover[id] = Math.min(1, Math.max(0, (x - LEFT) / (W - LEFT - RIGHT)));
      draw();
    });
    pad.addEventListener("mouseleave", function () {
      delete hover[id];
      draw();
    });
    draw();
  }

  function plots() {
    var v = view();
    var samples = v ? v.samples : [];
    var refusedAt = hist.outcomes.indexOf("refused");
    // A second's count as a rate: samples end about a second apart, a late tick a bit more.
    var seconds = samples.map(function (s, i) {
      var dt = i > 0 ? s.t - samples[i - 1].t : hist.interval;
      return Math.max(dt, hist.interval) / 1000;
    });
    var rate = function (count, i) {
      return count / seconds[i];
    };
    var classes = hist.classes.map(function (name, c) {
      return {
        name: name,
        cls: "c" + (c % 10),
        values: samples.map(function (s, i) {
          var sum = 0;
          s.stmts[c].forEach(function (count, o) {
            if (o !== refusedAt) sum += count;
          });
          return rate(sum, i);
        }),
      };
    });
    var refused = samples.map(function (s, i) {
      return rate(s.stmts.reduce(function (sum, row) { return sum + (row[refusedAt] || 0); }, 0), i);
    });
    var marks = [];
    refused.forEach(function (r, i) {
      if (r > 0) marks.push({ i: i, text: clock(samples[i].t) + ": " + num(r) + " refused/s" });
    });
    plot("statements", v, classes, {
      stacked: true,
      unit: "/s",
      marks: marks,
      tip: function (i) {
        var total = classes.reduce(function (sum, s) { return sum + s.values[i]; }, 0);
        return ["total: " + num(total) + "/s", "refused: " + num(refused[i]) + "/s"];
      },
    });
    var ms = function (us) {
      return us === null || us === undefined ? null : us / 1000;
    };
    plot("latency", v, [
      { name: "p50", cls: "c0", values: samples.map(function (s) { return ms(s.p50_us); }) },
      { name: "p99", cls: "c9", values: samples.map(function (s) { return ms(s.p99_us); }) },
    ], { unit: " ms" });
    var names = [];
    samples.forEach(function (s) {
      (s.slaves || []).forEach(function (sl) {
        if (names.indexOf(sl.name) < 0) names.push(sl.name);
      });
    });
    names.sort(byName);
    plot("lag", v, names.map(function (name, k) {
      return {
        name: name,
        cls: "c" + (k % 10),
        values: samples.map(function (s) {
          var sl = (s.slaves || []).find(function (x) { return x.name === name; });
          return sl && sl.lag_ms !== null && sl.lag_ms !== undefined ? sl.lag_ms : null;
        }),
      };
    }), {
      unit: " ms",
      empty: status && status.node.role === "slave" ? "lag is measured on the master: see its console" : "no slaves",
    });
    plot("clients", v, [
      { name: "clients", cls: "c0", values: samples.map(function (s) { return s.clients; }) },
      { name: "backend connections in use", cls: "c1", values: samples.map(function (s) { return s.pool; }) },
    ], {});
    timeline(v);
  }

  function kindClass(kind) {
    return BAD.indexOf(kind) >= 0 ? "kind-bad" : GOOD.indexOf(kind) >= 0 ? "kind-good" : "kind-info";
  }

  // The events: dots along the plots' time span, and a table, newest first.
  function timeline(v) {
    var root = document.getElementById("timeline");
    if (root) {
      root.replaceChildren();
      if (v) {
        timeAxis(root, v, TIMELINE_H, TIMELINE_W);
        events.forEach(function (e) {
          if (e.at_unix_ms < v.t0 || e.at_unix_ms > v.t1 + POLL_MS) return;
          var x = Math.min(TIMELINE_W - RIGHT, xOf(v, e.at_unix_ms, TIMELINE_W));
          var dot = svg("circle", { cx: x, cy: 14, r: 5, class: "event " + kindClass(e.kind) }, root);
          dot.dataset.kind = e.kind;
          svg("title", {}, dot).textContent = clock(e.at_unix_ms) + " " + e.kind + ": " + e.detail;
        });
      }
    }
    var body = document.querySelector("#events tbody");
    if (!body) return;
    body.replaceChildren();
    if (events.length === 0) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "none yet").colSpan = 3;
      body.appendChild(empty);
    }
    events.slice().reverse().forEach(function (e) {
      var tr = document.createElement("tr");
      tr.dataset.kind = e.kind;
      tr.dataset.id = String(e.id);
      cell(tr, clock(e.at_unix_ms));
      cell(tr, e.kind.replace(/_/g, " "), kindClass(e.kind));
      cell(tr, e.detail);
      body.appendChild(tr);
    });
  }

  // The cluster as boxes and links: the master on the left, every slave on the right, each link
  // coloured by its state (down, or lag over a second) and each box linking to its console.
  function map(s) {
    var root = document.getElementById("cluster-map");
    if (!root) return;
    root.replaceChildren();
    var rows = ordered(s.topology);
    var master = rows.find(function (r) { return r.role === "master"; });
    var slaves = rows.filter(function (r) { return r.role === "slave"; });
    var fromSlave = s.node.role === "slave";
    var masterLost = fromSlave && s.node.master_link && !s.node.master_link.connected;
    var rowH = 50, width = 720;
    var height = Math.max(1, slaves.length) * rowH + 10;
    root.setAttribute("viewBox", "0 0 " + width + " " + height);
    var box = function (r, x, y, w) {
      var parent = root;
      if (r.console && !r.this_node) {
        parent = svg("a", { href: "http://" + r.console + "/" }, root);
      }
      var g = svg("g", { class: "node" }, parent);
      g.dataset.node = r.name;
      svg("rect", { x: x, y: y, width: w, height: rowH - 12, rx: 5, class: "box" + (r.this_node ? " this" : "") }, g);
      label(g, x + 8, y + 15, r.name + (r.this_node ? " (this node)" : "") + " \u00b7 " + r.state);
      var sub = (r.address || "address unknown") + (r.lag_ms === null || r.lag_ms === undefined ? "" : " \u00b7 lag " + num(r.lag_ms) + " ms");
      label(g, x + 8, y + 30, sub, "start", "sub");
    };
    var my = height / 2 - (rowH - 12) / 2;
    if (master) box(master, 10, my, 240);
    slaves.forEach(function (r, k) {
      var y = 5 + k * rowH;
      var state;
      if (r.this_node && fromSlave) state = s.node.master_link && s.node.master_link.connected ? "ok" : "down";
      else if (masterLost) state = "stale";
      else state = r.state === "streaming" ? "ok" : "down";
      if (state === "ok" && r.lag_ms >= 1000) state = "slow";
      var edge = svg("path", {
        d: "M250," + (my + (rowH - 12) / 2) + " C330," + (my + (rowH - 12) / 2) + " 330," + (y + (rowH - 12) / 2) + " 410," + (y + (rowH - 12) / 2),
        class: "edge " + state,
      }, root);
      edge.dataset.slave = r.name;
      edge.dataset.state = state;
      box(r, 410, y, 300);
    });
    var note = document.getElementById("cluster-note");
    if (note) {
      var asOf = s.node.siblings_as_of_unix_ms;
      note.textContent = !fromSlave ? "" : masterLost
        ? "The master is unreachable: its slaves as it last told at " + (asOf ? clock(asOf) + " UTC (" + Math.round((Date.now() - asOf) / 1000) + " s ago)" : "no time: it never told") + "."
        : asOf ? "This node's siblings, as the master told at " + clock(asOf) + " UTC." : "The master has not told this node of its siblings yet.";
    }
  }

  function topology(s) {
    var topo = document.querySelector("#topology tbody");
    if (!topo) return;
    topo.replaceChildren();
    ordered(s.topology).forEach(function (n) {
      var tr = document.createElement("tr");
      tr.dataset.node = n.name;
      if (n.this_node) tr.className = "this";
      cell(tr, n.name + (n.this_node ? " (this node)" : ""), "name");
      cell(tr, n.role, "role");
      cell(tr, n.address, "address");
      cell(tr, n.state, "state");
      cell(tr, n.lsn, "lsn");
      cell(tr, n.lag_entries, "lag");
      cell(tr, n.lag_ms, "lag-ms");
      var td = cell(tr, n.this_node ? "this page" : n.console ? "" : null, "console");
      if (n.console && !n.this_node) {
        var a = document.createElement("a");
        a.href = "http://" + n.console + "/";
        a.textContent = n.console;
        td.appendChild(a);
      }
      topo.appendChild(tr);
    });
  }

  function counters(s) {
    var c = s.counters;
    var set = function (name, text) {
      var dd = document.querySelector('[data-counter="' + name + '"]');
      if (dd) dd.textContent = text;
    };
    set("client_connections", c.client_connections);
    set("connections_total", c.connections_total);
    set("backend", c.backend.in_use + " / " + c.backend.idle + " / " + c.backend.size);
    set("bytes", c.bytes_in + " / " + c.bytes_out);
    set("uptime", s.node.uptime_secs + " s");
    Object.keys(c.statements).forEach(function (cls) {
      var row = document.querySelector('#statements tr[data-class="' + cls + '"]');
      if (!row) return;
      Object.keys(c.statements[cls]).forEach(function (outcome) {
        var td = row.querySelector('[data-outcome="' + outcome + '"]');
        if (td) td.textContent = c.statements[cls][outcome];
      });
    });
  }

  function refusals(s) {
    var body = document.querySelector("#refusals tbody");
    if (!body) return;
    body.replaceChildren();
    if (s.refusals.length === 0) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "none yet").colSpan = 7;
      body.appendChild(empty);
    }
    s.refusals.forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, clock(r.at_unix_ms));
      cell(tr, r.user);
      cell(tr, r.source);
      cell(tr, r.class);
      cell(tr, r.code);
      var code = document.createElement("code");
      code.textContent = r.statement;
      var td = document.createElement("td");
      td.appendChild(code);
      tr.appendChild(td);
      cell(tr, r.reason);
      body.appendChild(tr);
    });
  }

  function render() {
    if (status) {
      var state = document.getElementById("node-state");
      if (state) state.textContent = status.node.state;
      map(status);
      topology(status);
      counters(status);
      refusals(status);
    }
    plots();
  }

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) {
        window.location = "/login";
        throw new Error("logged out");
      }
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  function poll() {
    var newest = hist.samples.length ? hist.samples[hist.samples.length - 1].t : 0;
    Promise.all([get("/api/status"), get("/api/history?after=" + newest), get("/api/events?after=" + lastEvent)])
      .then(function (got) {
        status = got[0];
        var h = got[1];
        hist.interval = h.interval_ms;
        hist.classes = h.classes;
        hist.outcomes = h.outcomes;
        hist.samples = hist.samples.concat(h.samples).slice(-h.capacity);
        got[2].forEach(function (e) {
          events.push(e);
          lastEvent = Math.max(lastEvent, e.id);
        });
        events = events.slice(-200);
        render();
      })
      .catch(function () {})
      .finally(function () {
        setTimeout(poll, POLL_MS);
      });
  }
  poll();
})();
