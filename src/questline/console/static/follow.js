// How the console's live pages follow the engine's channels: one WebSocket with the signed-in admin's
// token, subscribed to the page's channels, answering pings, reconnecting with back-off, and saying
// what happens in the page's status line. Each page's own script handles its frames. Text goes in
// with textContent only.
window.questlineFollow = function (options) {
  "use strict";
  var retry = 1000, state = options.state;

  function connect() {
    var socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/v1/realtime?token=" +
      encodeURIComponent(options.token) + "&app=" + encodeURIComponent(options.app));
    socket.onopen = function () {
      retry = 1000;
      state.textContent = options.connected;
      options.channels.forEach(function (channel) {
        socket.send(JSON.stringify({type: "subscribe", channel: channel}));
      });
    };
    socket.onmessage = function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "ping") {
        socket.send(JSON.stringify({type: "pong"}));
      } else if (frame.type === "error") {
        state.textContent = "Refused: " + frame.code + " " + (frame.detail || "");
      } else if (frame.type === "message" || frame.type === "resync") {
        options.frame(frame);
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
};
