// A competition's standings, live: competition:<id> followed with follow.js; the top
// ten are read again whenever the channel says something moved. Text goes in with textContent only.
(function () {
  "use strict";
  var root = document.getElementById("competition-live");
  if (!root) return;
  var app = root.dataset.app, token = root.dataset.token, id = root.dataset.competition;
  var state = document.getElementById("live-state"), channel = "competition:" + id;
  var reading = false, again = false;

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

  window.questlineFollow({
    app: app, token: token, channels: [channel], state: state,
    connected: "Connected; the standings update as they move.",
    frame: function (frame) {
      if (frame.channel === channel) standings();
    }
  });
})();
