// Live parts of the console: every 2 s, /api/status replaces the topology, the counters and the
// refusals. Only textContent is set, never markup, because names and statements come from clients.
"use strict";
(function () {
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "\u2014" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function clock(ms) {
    var d = new Date(ms);
    return d.toISOString().substring(11, 19);
  }
  function render(s) {
    var state = document.getElementById("node-state");
    if (state) state.textContent = s.node.state;
    var topo = document.querySelector("#topology tbody");
    if (topo) {
      topo.replaceChildren();
      s.topology.forEach(function (n) {
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
        topo.appendChild(tr);
      });
    }
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
    var refusals = document.querySelector("#refusals tbody");
    if (refusals) {
      refusals.replaceChildren();
      if (s.refusals.length === 0) {
        var empty = document.createElement("tr");
        empty.className = "empty";
        cell(empty, "none yet");
        empty.firstChild.colSpan = 7;
        refusals.appendChild(empty);
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
        refusals.appendChild(tr);
      });
    }
  }
  function poll() {
    fetch("/api/status", { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) {
          window.location = "/login";
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then(function (s) {
        if (s) render(s);
      })
      .catch(function () {})
      .finally(function () {
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 2000);
})();
