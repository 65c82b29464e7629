/*
 * The reference Ainisa chat widget: plain JavaScript, no build step.
 *
 * Load it after the page has rendered window.ainisaUser:
 *
 *   <script>window.ainisaUser = {user_id: "1", user_hash: "...", firstname: "Ada"};</script>
 *   <script src="/static/widget.js" data-widget-id="wid_demo"></script>
 *
 * Every message is POSTed as JSON to the chat endpoint (data-endpoint, or /chat
 * beside this script) with the widget ID in the X-Ainisa-Widget-Id header and
 * window.ainisaUser, read afresh at each send, as the "user" object. The reply's
 * "reply" text is shown; an error answer ({"error", "detail"}) is shown as an alert.
 *
 * A message with an attachment (the paperclip) is POSTed as multipart/form-data
 * instead: the message, each non-empty field of window.ainisaUser as a text part
 * of its own name, and the file as the part "file" (over HTTP in WebSocket mode too).
 *
 * With "Send over a WebSocket" checked (or data-transport="websocket"), it
 * holds a WebSocket to the endpoint plus "/ws" (data-ws-endpoint to change it),
 * names the widget in the connect URL (?widget_id=...) and sends the user object
 * in the first frame only: a connect URL lands in access logs, a frame does not.
 * Later frames carry the message alone; the middleware settled the identity on
 * the first. When window.ainisaUser changes, the widget reconnects, since a
 * connection's identity never changes. A connection the server closes shows its
 * close code and reason (the error code) as an alert.
 *
 * After each exchange the widget dispatches an "ainisa:exchange" event on window
 * whose detail is {sent, status, body, transport}: what it sent and what came
 * back ("status" is the HTTP status, or for a WebSocket 101 for a reply and the
 * close code for a closed connection), so a page can show both (the demo's
 * inspector does).
 */
(function () {
  "use strict";

  var FIELDS = ["user_id", "user_hash", "user_token", "firstname", "lastname", "email"];
  var script = document.currentScript;
  if (!script) {
    return;
  }
  var scriptUrl = new URL(script.src, document.baseURI);
  var widgetId = script.getAttribute("data-widget-id") || scriptUrl.searchParams.get("widget_id");
  var endpoint = new URL(script.getAttribute("data-endpoint") || "/chat", scriptUrl).href;
  var wsEndpoint = new URL(script.getAttribute("data-ws-endpoint") || endpoint + "/ws");
  wsEndpoint.protocol = wsEndpoint.protocol === "https:" ? "wss:" : "ws:";
  wsEndpoint.searchParams.set("widget_id", widgetId || "");
  var uid = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  // The user object as the page holds it now: a tampered page sends tampered data,
  // which is the point. Strings and integers pass as they are; anything else is "".
  function currentUser() {
    var source = window.ainisaUser || {};
    var user = {};
    FIELDS.forEach(function (field) {
      var value = source[field];
      var isInteger = typeof value === "number" && Number.isInteger(value);
      user[field] = typeof value === "string" || isInteger ? value : "";
    });
    return user;
  }

  function mount() {
    var id = "ainisa-chat-" + ++uid;
    var stylesheet = el("link", { rel: "stylesheet", href: new URL("widget.css", scriptUrl).href });
    document.head.appendChild(stylesheet);

    var root = el("div", { class: "ainisa-widget" });
    var toggle = el(
      "button",
      { type: "button", class: "ainisa-toggle", "aria-expanded": "false", "aria-controls": id },
      "Chat with us"
    );
    var panel = el("section", { id: id, class: "ainisa-panel", "aria-labelledby": id + "-title" });
    panel.hidden = true;
    var title = el("h2", { id: id + "-title", class: "ainisa-title" }, "Chat");
    var log = el("ol", {
      class: "ainisa-log",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Conversation",
      tabindex: "0",
    });
    var alert = el("p", { class: "ainisa-error", role: "alert" });
    var form = el("form", { class: "ainisa-form" });
    var label = el("label", { for: id + "-input" }, "Your message");
    var input = el("input", {
      id: id + "-input",
      name: "message",
      type: "text",
      autocomplete: "off",
      maxlength: "2000",
      required: "",
    });
    var attachLabel = el("label", { class: "ainisa-attach", for: id + "-file", title: "Attach a file" }, "\ud83d\udcce");
    var attach = el("input", { id: id + "-file", name: "file", type: "file", class: "ainisa-file" });
    attachLabel.setAttribute("aria-label", "Attach a file");
    var attached = el("p", { class: "ainisa-attached", "aria-live": "polite" });
    var send = el("button", { type: "submit", class: "ainisa-send" }, "Send");
    var transport = el("label", { class: "ainisa-transport" });
    var useSocket = el("input", { type: "checkbox", name: "websocket" });
    useSocket.checked = script.getAttribute("data-transport") === "websocket";
    transport.append(useSocket, " Send over a WebSocket");
    var close = el("button", { type: "button", class: "ainisa-close", "aria-label": "Close chat" }, "\u00d7");

    form.append(label, input, attachLabel, attach, send, attached);
    attach.addEventListener("change", function () {
      var file = attach.files && attach.files[0];
      attached.textContent = file ? "Attached: " + file.name : "";
    });
    panel.append(close, title, log, alert, form, transport);
    root.append(panel, toggle);
    document.body.appendChild(root);

    function setOpen(open) {
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      if (open) {
        input.focus();
      } else {
        toggle.focus();
      }
    }

    function say(author, text) {
      var item = el("li", { class: "ainisa-message ainisa-" + author });
      item.append(el("span", { class: "ainisa-author" }, author === "visitor" ? "You" : "Assistant"), el("span", { class: "ainisa-text" }, text));
      log.appendChild(item);
      log.scrollTop = log.scrollHeight;
    }

    toggle.addEventListener("click", function () {
      setOpen(panel.hidden);
    });
    close.addEventListener("click", function () {
      setOpen(false);
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        setOpen(false);
      }
    });

    function busy(on) {
      send.disabled = on;
      if (on) {
        log.setAttribute("aria-busy", "true");
      } else {
        log.removeAttribute("aria-busy");
        input.focus();
      }
    }

    function exchanged(sent, status, body, kind) {
      window.dispatchEvent(
        new CustomEvent("ainisa:exchange", { detail: { sent: sent, status: status, body: body, transport: kind } })
      );
    }

    // -- the WebSocket transport: one connection, identity in its first frame --
    var socket = null;
    var socketUser = null;
    var waiting = [];

    function finish(socketClosed, event) {
      var next = waiting.shift();
      if (!next) {
        return;
      }
      if (!socketClosed) {
        var body = {};
        try {
          body = JSON.parse(event.data);
        } catch (error) {
          body = {};
        }
        if (typeof body.reply === "string") {
          say("assistant", body.reply);
        } else {
          alert.textContent = "Message not delivered: " + (body.detail || "the chat did not answer.");
        }
        exchanged(next, 101, body, "websocket");
      } else {
        var reason = event.reason || "";
        alert.textContent =
          "Message not delivered: the chat closed the connection (" + event.code + (reason ? " " + reason : "") + ")";
        exchanged(next, event.code, { error: reason || "closed" }, "websocket");
        waiting = [];
      }
      busy(false);
    }

    function overSocket(message) {
      var user = currentUser();
      var userKey = JSON.stringify(user);
      if (socket && socket.readyState <= 1 && socketUser === userKey) {
        var frame = { message: message };
        waiting.push(frame);
        socket.send(JSON.stringify(frame));
        return;
      }
      if (socket) {
        socket.close(1000);  // a connection's identity never changes: reconnect
      }
      var first = { message: message, user: user };
      var opened = new WebSocket(wsEndpoint.href);
      socket = opened;
      socketUser = userKey;
      waiting = [first];
      opened.addEventListener("open", function () {
        opened.send(JSON.stringify(first));
      });
      opened.addEventListener("message", function (event) {
        if (opened === socket) {
          finish(false, event);
        }
      });
      opened.addEventListener("close", function (event) {
        if (opened === socket) {
          socket = null;
          finish(true, event);
        }
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var message = input.value.trim();
      if (!message) {
        return;
      }
      var file = attach.files && attach.files[0];
      say("visitor", file ? message + " [" + file.name + "]" : message);
      input.value = "";
      attach.value = "";
      attached.textContent = "";
      alert.textContent = "";
      busy(true);
      if (useSocket.checked && !file) {  // an attachment always goes over HTTP
        overSocket(message);
        return;
      }
      var sent = { message: message, user: currentUser() };
      var request = {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Ainisa-Widget-Id": widgetId || "" },
        body: JSON.stringify(sent),
      };
      if (file) {
        // multipart/form-data: the browser writes the boundary into the Content-Type.
        var body = new FormData();
        body.append("message", message);
        FIELDS.forEach(function (field) {
          if (sent.user[field] !== "") {
            body.append(field, String(sent.user[field]));
          }
        });
        body.append("file", file, file.name);
        sent.attachment = { name: file.name, size: file.size };
        request = { method: "POST", headers: { "X-Ainisa-Widget-Id": widgetId || "" }, body: body };
      }
      var status = 0;
      fetch(endpoint, request)
        .then(function (response) {
          status = response.status;
          return response.json().catch(function () {
            return {};
          });
        })
        .then(function (body) {
          if (status >= 200 && status < 300 && typeof body.reply === "string") {
            say("assistant", body.reply);
          } else {
            var detail = body.detail || "The chat is not available right now.";
            alert.textContent = "Message not delivered: " + detail + (body.error ? " (" + body.error + ")" : "");
          }
          exchanged(sent, status, body, "http");
        })
        .catch(function () {
          alert.textContent = "Message not delivered: the chat could not be reached.";
          exchanged(sent, 0, {}, "http");
        })
        .finally(function () {
          busy(false);
        });
    });
  }

  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }
})();
