/*
 * The demo page's inspector: what the widget sent, what the middleware decided,
 * and what the chat backend received. It listens for the widget's
 * "ainisa:exchange" events, and drives the tamper control, which edits
 * window.ainisaUser.user_id in this page as an attacker with the browser's
 * console would.
 */
(function () {
  "use strict";

  var FIELDS = ["user_id", "user_hash", "firstname", "lastname", "email"];
  var original = window.ainisaUser ? window.ainisaUser.user_id : undefined;

  function byId(id) {
    return document.getElementById(id);
  }

  function shown(value) {
    return JSON.stringify(value, null, 2);
  }

  // A field was stripped when the widget sent a value and the backend did not get it.
  function stripped(sentUser, received) {
    if (!sentUser) {
      return []; // a later WebSocket frame: the message alone
    }
    return FIELDS.filter(function (field) {
      var value = sentUser[field];
      if (value === "" || value === undefined || value === null) {
        return false;
      }
      return !received || !Object.prototype.hasOwnProperty.call(received, field);
    });
  }

  window.addEventListener("ainisa:exchange", function (event) {
    var detail = event.detail;
    var body = detail.body || {};
    var status = byId("inspector-status");
    byId("inspector-sent").textContent = shown(detail.sent);
    var overSocket = detail.transport === "websocket";
    var error = body.error ? " " + body.error : "";
    if (overSocket) {
      // 101: a reply on the open connection; otherwise the code it was closed with.
      byId("inspector-http").textContent =
        detail.status === 101 ? "WebSocket reply" : "WebSocket closed " + detail.status + error;
    } else {
      byId("inspector-http").textContent = detail.status ? String(detail.status) + error : "no answer";
    }
    var answered = overSocket ? detail.status === 101 && !body.error : detail.status >= 200 && detail.status < 300;
    if (answered) {
      status.textContent = body.status;
      status.setAttribute("data-status", body.status);
      byId("inspector-received").textContent = shown(body.received === undefined ? null : body.received);
      var gone = stripped(detail.sent.user, body.received);
      var notes = gone.map(function (field) {
        return field === "user_hash" && body.verified ? field + " (always removed)" : field;
      });
      byId("inspector-stripped").textContent = notes.length ? notes.join(", ") : "nothing";
    } else {
      status.textContent = "rejected";
      status.setAttribute("data-status", "rejected");
      byId("inspector-received").textContent = "nothing: the chat backend was never called";
      byId("inspector-stripped").textContent = "the whole request was refused";
    }
  });

  var form = byId("tamper");
  if (!form) {
    return;
  }
  var input = byId("tamper-user-id");
  var state = byId("tamper-state");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.ainisaUser = window.ainisaUser || {};
    window.ainisaUser.user_id = input.value;
    state.textContent = 'Tampered: window.ainisaUser.user_id is now "' + input.value + '"; user_hash is unchanged.';
    state.setAttribute("data-tampered", "true");
  });

  byId("tamper-restore").addEventListener("click", function () {
    if (window.ainisaUser) {
      window.ainisaUser.user_id = original;
    }
    state.textContent = "window.ainisaUser is as the server rendered it.";
    state.removeAttribute("data-tampered");
  });
})();
