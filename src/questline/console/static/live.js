// The console's live view: follows (follow.js) admin:monitor (numbers and a
// sparkline of events per second) and, when a board is picked, leaderboard:<key> (the standings
// are read again whenever it moves). Text goes in with textContent only.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var app = root.dataset.app, token = root.dataset.token, board = root.dataset.board;
  var state = document.getElementById("live-state");
  var history = [], reading = false, again = false;

  function show(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  function sparkline() {
    var line = document.getElementById("eps-line");
    if (!line) return;
    var top = Math.max.apply(null, history.concat([1]));
    var step = 640 / Math.max(history.length - 1, 1);
    line.setAttribute("points", history.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (110 - 100 * v / top).toFixed(1);
    }).join(" "));
  }

  function monitor(data) {
    show("eps", data.events_per_second);
    show("pending", data.events_pending);
    var behind = 0;
    Object.keys(data.relay || {}).forEach(function (name) { behind = Math.max(behind, data.relay[name].behind); });
    show("lag", behind);
    show("webhook-errors", data.webhook_errors);
    history.push(Number(data.events_per_second) || 0);
    if (history.length > 60) history.shift();
    sparkline();
  }

  function standings() {
    if (reading) { again = true; return; }
    reading = true;
    fetch("/v1/leaderboards/" + encodeURIComponent(board) + "?limit=10", {
      headers: {"Authorization": "Bearer " + token, "X-Questline-App": app}
    }).then(function (answer) { return answer.ok ? answer.json() : null; }).then(function (page) {
      var rows = document.getElementById("standings-rows");
      if (!page || !rows) return;
      while (rows.firstChild) rows.removeChild(rows.firstChild);
      page.items.forEach(function (entry) {
        var tr = document.createElement("tr");
        [entry.rank, entry.display_name, entry.score].forEach(function (value) {
          var td = document.createElement("td");
          td.textContent = String(value);
          tr.appendChild(td);
        });
        rows.appendChild(tr);
      });
      show("board-updated", "Updated " + new Date().toLocaleTimeString() + ".");
    }).finally(function () {
      reading = false;
      if (again) { again = false; standings(); }
    });
  }

  var channels = ["admin:monitor"];
  if (board) channels.push("leaderboard:" + board);
  window.questlineFollow({
    app: app, token: token, channels: channels, state: state,
    connected: "Connected; the numbers refresh every few seconds.",
    frame: function (frame) {
      if (frame.type === "message" && frame.channel === "admin:monitor") monitor(frame.data.data || {});
      else if (frame.channel === "leaderboard:" + board) standings();
    }
  });
})();
