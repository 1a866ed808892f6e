// A competition's standings, live: one WebSocket to the engine subscribed to competition:<id>; the top
// ten are read again whenever the channel says something moved. Text goes in with textContent only.
(function () {
  "use strict";
  var root = document.getElementById("competition-live");
  if (!root) return;
  var app = root.dataset.app, token = root.dataset.token, id = root.dataset.competition;
  var state = document.getElementById("live-state"), channel = "competition:" + id;
  var retry = 1000, reading = false, again = false;

  function standings() {
    if (reading) { again = true; return; }
    reading = true;
    fetch("/v1/competitions/" + encodeURIComponent(id) + "/leaderboard?limit=10", {
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
      var note = document.getElementById("board-updated");
      if (note) note.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
    }).finally(function () {
      reading = false;
      if (again) { again = false; standings(); }
    });
  }

  function connect() {
    var socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/v1/realtime?token=" +
      encodeURIComponent(token) + "&app=" + encodeURIComponent(app));
    socket.onopen = function () {
      retry = 1000;
      state.textContent = "Connected; the standings update as they move.";
      socket.send(JSON.stringify({type: "subscribe", channel: channel}));
    };
    socket.onmessage = function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "ping") {
        socket.send(JSON.stringify({type: "pong"}));
      } else if ((frame.type === "message" || frame.type === "resync") && frame.channel === channel) {
        standings();
      } else if (frame.type === "error") {
        state.textContent = "Refused: " + frame.code + " " + (frame.detail || "");
      }
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) {
        state.textContent = "Your session ended: sign in again.";
        return;
      }
      state.textContent = "Disconnected; trying again…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  connect();
})();
