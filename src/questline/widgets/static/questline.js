/* Questline widgets: leaderboards, XP bars, streaks, challenges, battle passes, competition
 * standings, achievements (with share links), a chat room, and a streamer's G-Keys and energy, rendered into a
 * container of the host page.
 *
 *   <div id="board"></div>
 *   <script src="https://questline.example.com/widgets/questline.js"></script>
 *   <script src="/my-page.js"></script>   // QuestlineWidgets.mount(document.getElementById("board"),
 *                                         //   {kind: "leaderboard", board: "weekly", token: PLAYER_TOKEN})
 *
 * Safe to embed: one global (QuestlineWidgets), no inline styles or scripts (it works under a
 * Content-Security-Policy without 'unsafe-inline'), every value written as text, never as HTML.
 * Styles come from /widgets/questline.css and are themed with CSS variables (--ql-accent, …).
 * Live: the widget refreshes when the engine's live channel for the player says something
 * changed (when the engine has one), and polls every `refreshSeconds` (default 30) otherwise.
 */
(function () {
  "use strict";
  if (window.QuestlineWidgets) return;

  var script = document.currentScript;
  var ORIGIN = script && script.src ? new URL(script.src).origin : window.location.origin;

  function ensureStyles(base) {
    var href = base + "/widgets/questline.css";
    var links = document.querySelectorAll("link[data-questline]");
    for (var i = 0; i < links.length; i += 1) if (links[i].getAttribute("href") === href) return;
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    link.setAttribute("data-questline", "");
    document.head.appendChild(link);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function bar(percent, label) {
    var outer = el("div", "ql-bar");
    outer.setAttribute("role", "progressbar");
    outer.setAttribute("aria-valuemin", "0");
    outer.setAttribute("aria-valuemax", "100");
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    outer.setAttribute("aria-valuenow", String(value));
    if (label) outer.setAttribute("aria-label", label);
    var fill = el("div", "ql-bar-fill");
    fill.style.width = value + "%"; // CSSOM, allowed under a strict style-src
    outer.appendChild(fill);
    return outer;
  }

  function duration(ms) {
    if (ms <= 0) return "now";
    var minutes = Math.floor(ms / 60000);
    var d = Math.floor(minutes / 1440);
    var h = Math.floor((minutes % 1440) / 60);
    var m = minutes % 60;
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m";
  }

  function rows(list, render) {
    var ol = el("ol", "ql-list");
    list.forEach(function (item) { ol.appendChild(render(item)); });
    return ol;
  }

  var RENDER = {
    leaderboard: function (o) {
      var query = "?limit=" + encodeURIComponent(o.limit || 10) + (o.partition ? "&partition=" + encodeURIComponent(o.partition) : "");
      return { path: "/v1/leaderboards/" + encodeURIComponent(o.board) + query, draw: function (page) {
        var box = el("div", "ql-leaderboard");
        box.appendChild(el("h3", "ql-title", o.title || page.name || page.board));
        box.appendChild(rows(page.items, function (row) {
          var li = el("li", "ql-row" + (row.is_me ? " ql-me" : ""));
          li.appendChild(el("span", "ql-rank", row.rank));
          li.appendChild(el("span", "ql-name", row.display_name));
          li.appendChild(el("span", "ql-score", row.score));
          return li;
        }));
        if (page.me && !page.items.some(function (r) { return r.is_me; })) {
          box.appendChild(el("p", "ql-me-line", "You: #" + page.me.rank + " · " + page.me.score));
        }
        return box;
      } };
    },
    competition: function (o) {
      return { path: "/v1/competitions/" + encodeURIComponent(o.competition) + "/leaderboard?limit=" +
        encodeURIComponent(o.limit || 10), draw: RENDER.leaderboard({ title: o.title || "Standings" }).draw };
    },
    xp: function (o) {
      return { path: "/v1/players/" + encodeURIComponent(o.player) , draw: function (profile) {
        var track = o.track || "xp";
        var info = profile.levels[track];
        var box = el("div", "ql-xp");
        if (!info) { box.appendChild(el("p", "ql-empty", "No " + track + " yet")); return box; }
        box.appendChild(el("div", "ql-level", "Level " + info.level + (info.name ? " · " + info.name : "")));
        box.appendChild(bar(info.progress_percent, track + " progress"));
        box.appendChild(el("div", "ql-caption", info.xp_to_next_level === null ? info.total_xp + " XP · max level"
          : info.xp_in_level + " / " + info.xp_for_next_level + " XP")); 
        return box;
      } };
    },
    streak: function (o) {
      return { path: "/v1/players/" + encodeURIComponent(o.player) + "/streaks", draw: function (data) {
        var box = el("div", "ql-streaks");
        data.streaks.filter(function (s) { return !o.streak || s.key === o.streak; }).forEach(function (s) {
          var item = el("div", "ql-streak" + (s.active_this_period ? " ql-active" : ""));
          item.appendChild(el("span", "ql-count", s.current));
          item.appendChild(el("span", "ql-name", s.name));
          item.appendChild(el("span", "ql-caption", "best " + s.longest + (s.breaks_at && !s.active_this_period
            ? " · ends in " + duration(new Date(s.breaks_at) - Date.now()) : "")));
          box.appendChild(item);
        });
        return box;
      } };
    },
    challenges: function (o) {
      return { path: "/v1/players/" + encodeURIComponent(o.player) + "/challenges", draw: function (data) {
        var box = el("div", "ql-challenges");
        ["daily", "weekly", "monthly", "special"].forEach(function (group) {
          var list = (data[group] || []).slice(0, o.limit || 10);
          if (!list.length) return;
          box.appendChild(el("h4", "ql-group", group));
          box.appendChild(rows(list, function (c) {
            var li = el("li", "ql-challenge ql-" + c.status);
            li.appendChild(el("span", "ql-name", c.name));
            li.appendChild(bar(c.progress_percent, c.name));
            li.appendChild(el("span", "ql-caption", c.status.replace(/_/g, " ")));
            return li;
          }));
        });
        return box;
      } };
    },
    battlepass: function (o) {
      return { path: "/v1/players/" + encodeURIComponent(o.player) + "/battle-pass", draw: function (p) {
        var box = el("div", "ql-battlepass");
        box.appendChild(el("h3", "ql-title", p.name || p.season));
        box.appendChild(el("div", "ql-level", "Tier " + p.current_tier + (p.has_premium ? " · premium" : "")));
        box.appendChild(bar(p.xp_for_next_tier ? (100 * p.xp_in_tier) / p.xp_for_next_tier : 100, "tier progress"));
        var claimable = (p.claimable.free || []).length + (p.claimable.premium || []).length;
        box.appendChild(el("div", "ql-caption", claimable ? claimable + " rewards to claim" : "nothing to claim"));
        return box;
      } };
    },
    achievements: function (o) {
      // Unlocked achievements with a Share button: it asks the engine for the card's link (the
      // player's cards must be public), then shows the link; links made are kept across refreshes.
      var shared = {};
      function link(url) {
        var a = el("a", "ql-share-link", "Share link");
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        return a;
      }
      return { path: "/v1/players/" + encodeURIComponent(o.player) + "/achievements", draw: function (data, _, api) {
        var box = el("div", "ql-achievements");
        var list = data.achievements.filter(function (a) { return a.unlocked || !o.unlockedOnly; });
        if (!list.length) { box.appendChild(el("p", "ql-empty", "No achievements yet")); return box; }
        box.appendChild(rows(list.slice(0, o.limit || 20), function (a) {
          var li = el("li", "ql-achievement" + (a.unlocked ? " ql-unlocked" : ""));
          li.appendChild(el("span", "ql-name", a.name));
          if (!a.unlocked) { li.appendChild(el("span", "ql-caption", a.progress.percent + "%")); return li; }
          if (shared[a.key]) { li.appendChild(link(shared[a.key])); return li; }
          var button = el("button", "ql-share", "Share");
          button.type = "button";
          button.addEventListener("click", function () {
            button.disabled = true;
            api.post("/v1/players/" + encodeURIComponent(o.player) + "/share-cards",
              { kind: "achievement", subject: a.key }).then(function (card) {
              shared[a.key] = card.url;
              button.replaceWith(link(card.url));
            }, function (error) {
              button.replaceWith(el("span", "ql-caption", error.message === "share_cards_private"
                ? "sharing is off" : "could not share (" + error.message + ")"));
            });
          });
          li.appendChild(button);
          return li;
        }));
        return box;
      } };
    },
    chat: function (o) {
      // A chat room (community:{id} or competition:{id}) for a player in it: the latest messages,
      // live on chat:{room}, and a box to write in (a draft survives the redraws).
      var path = "/v1/chat/" + encodeURIComponent(o.room) + "/messages";
      var draft = "";
      return { path: path + "?limit=" + encodeURIComponent(o.limit || 20), channel: "chat:" + o.room,
        draw: function (data, _, api) {
          var box = el("div", "ql-chat");
          var list = data.items.slice().reverse(); // the page is newest first; a chat reads downwards
          if (!list.length) box.appendChild(el("p", "ql-empty", "No messages yet"));
          else box.appendChild(rows(list, function (m) {
            var li = el("li", "ql-message" + (m.body === null ? " ql-deleted" : ""));
            li.appendChild(el("span", "ql-author", m.player_id));
            li.appendChild(el("span", "ql-text", m.body === null ? "(deleted)" : m.body));
            return li;
          }));
          var form = el("form", "ql-chat-form");
          var input = el("input", "ql-chat-input");
          input.type = "text";
          input.value = draft;
          input.setAttribute("aria-label", "message");
          input.addEventListener("input", function () { draft = input.value; });
          var send = el("button", "ql-share ql-chat-send", "Send");
          send.type = "submit";
          var note = el("span", "ql-caption ql-chat-note");
          form.appendChild(input);
          form.appendChild(send);
          form.appendChild(note);
          form.addEventListener("submit", function (event) {
            event.preventDefault();
            var text = input.value.trim();
            if (!text) return;
            send.disabled = true;
            api.post(path, { body: text }).then(function () {
              draft = "";
              api.refresh();
            }, function (error) {
              send.disabled = false;
              note.textContent = "not sent (" + error.message + ")";
            });
          });
          box.appendChild(form);
          return box;
        } };
    },
    gkeys: function (o) {
      var base = "/v1/streamers/" + encodeURIComponent(o.streamer);
      return { path: base + "/keys", also: base + "/energy", draw: function (keys, energy) {
        var box = el("div", "ql-gkeys");
        if (energy) {
          box.appendChild(el("div", "ql-level", "Energy " + energy.current + " / " + energy.maximum));
          box.appendChild(bar((100 * energy.current) / Math.max(1, energy.maximum), "energy"));
        }
        box.appendChild(rows(keys.keys, function (k) {
          var li = el("li", "ql-key ql-" + k.status);
          li.appendChild(el("span", "ql-name", k.category));
          li.appendChild(el("span", "ql-caption", k.status === "cooloff" && k.cooloff_until
            ? "cooloff " + duration(new Date(k.cooloff_until) - Date.now()) : k.status));
          return li;
        }));
        return box;
      } };
    },
  };

  function mount(container, options) {
    if (!container || !options || !RENDER[options.kind]) throw new TypeError("mount(container, {kind, ...}): unknown kind");
    var base = (options.baseUrl || ORIGIN).replace(/\/+$/, "");
    var spec = RENDER[options.kind](options);
    var headers = { Accept: "application/json" };
    if (options.token) headers.Authorization = "Bearer " + options.token;
    var root = el("div", "questline-widget ql-" + options.kind);
    root.setAttribute("aria-live", "polite");
    container.replaceChildren(root);
    ensureStyles(base);
    var timer = null;
    var stopped = false;
    var socket = null;

    function get(path) {
      return fetch(base + path, { headers: headers, credentials: "omit" }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error((body && body.code) || "http_" + r.status);
          return body;
        });
      });
    }

    function post(path, body) {
      return fetch(base + path, { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers),
        body: JSON.stringify(body), credentials: "omit" }).then(function (r) {
        return r.json().then(function (answer) {
          if (!r.ok) throw new Error((answer && answer.code) || "http_" + r.status);
          return answer;
        });
      });
    }

    function refresh() {
      if (stopped) return Promise.resolve();
      return Promise.all([get(spec.path), spec.also ? get(spec.also).catch(function () { return null; }) : null])
        .then(function (answers) {
          root.replaceChildren(spec.draw(answers[0], answers[1], { post: post, refresh: refresh }));
          root.setAttribute("data-state", "ready");
        }, function (error) {
          root.replaceChildren(el("p", "ql-error", "Unavailable (" + error.message + ")"));
          root.setAttribute("data-state", "error");
        });
    }

    function live() {
      // The widget's own channel (a chat room's) or the player's, when the engine offers one:
      // refresh on every message.
      var channel = spec.channel || (options.player ? "player:" + options.player : null);
      if (!channel || !options.token || typeof WebSocket === "undefined" || options.live === false) return;
      try {
        socket = new WebSocket(base.replace(/^http/, "ws") + "/v1/realtime?token=" + encodeURIComponent(options.token));
      } catch (e) { socket = null; return; }
      socket.onopen = function () {
        socket.send(JSON.stringify({ type: "subscribe", channel: channel }));
      };
      socket.onmessage = function (event) {
        try { if (JSON.parse(event.data).type === "message") refresh(); } catch (e) { /* not ours */ }
      };
      socket.onerror = function () { socket = null; };
    }

    refresh();
    timer = setInterval(refresh, 1000 * (options.refreshSeconds || 30));
    live();
    return {
      refresh: refresh,
      destroy: function () {
        stopped = true;
        clearInterval(timer);
        if (socket) socket.close();
        container.replaceChildren();
      },
    };
  }

  window.QuestlineWidgets = Object.freeze({ mount: mount, kinds: Object.keys(RENDER) });
})();
