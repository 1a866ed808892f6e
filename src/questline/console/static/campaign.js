// A campaign's impressions and spend, live: campaign:<id> followed with follow.js.
// campaign.totals frames carry the totals; any other message of the channel (or a resync) reads the
// campaign again. Counters only grow, so a frame showing fewer impressions than shown is an older
// one (from another process) and is skipped. Text goes in with textContent only.
(function () {
  "use strict";
  var root = document.getElementById("campaign-live");
  if (!root) return;
  var app = root.dataset.app, token = root.dataset.token, id = root.dataset.campaign;
  var state = document.getElementById("live-state"), channel = "campaign:" + id;
  var shown = -1;

  function put(elementId, value) {
    var element = document.getElementById(elementId);
    if (element && value !== undefined && value !== null) element.textContent = String(value);
  }

  function show(totals) {
    if (typeof totals.impressions === "number") {
      if (totals.impressions < shown) return;
      shown = totals.impressions;
    }
    put("status", totals.status);
    put("impressions", totals.impressions);
    put("impression-target", totals.impression_target);
    put("spent", totals.spent);
    put("budget", totals.budget);
    put("remaining", totals.remaining);
    put("totals-updated", "Updated " + new Date().toLocaleTimeString() + ".");
  }

  function read() {
    fetch("/v1/campaigns/" + encodeURIComponent(id), {
      headers: {"Authorization": "Bearer " + token, "X-Questline-App": app}
    }).then(function (answer) { return answer.ok ? answer.json() : null; }).then(function (campaign) {
      if (campaign) show(campaign);
    });
  }

  window.questlineFollow({
    app: app, token: token, channels: [channel], state: state,
    connected: "Connected; impressions and spend update as they are recorded.",
    frame: function (frame) {
      if (frame.channel !== channel) return;
      if (frame.type === "message" && frame.data && frame.data.type === "campaign.totals") show(frame.data.data);
      else read();
    }
  });
})();
