/* Best-practice Copilot: the embeddable support widget.
 *
 *   <script src="https://copilot.example.com/widget.js" data-key="wk_..." async></script>
 *   optional: data-title="在线助手", data-lang="en", data-position="left"
 *
 * Builds a floating button and a chat panel inside a Shadow DOM, so the host page's CSS cannot
 * reach it and its CSS cannot reach the page. Talks only to /widget/api/* of the server this file
 * came from, with the widget key; the server checks the page's origin. No external fonts or CDNs.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[src*="/widget.js"][data-key]');
  if (!script || window.__copilotWidget) return;
  window.__copilotWidget = true;

  var BASE = new URL(script.src, location.href).origin;
  var KEY = script.getAttribute("data-key") || "";
  var LANG = (script.getAttribute("data-lang") || "zh").toLowerCase().indexOf("en") === 0 ? "en" : "zh";
  var LEFT = script.getAttribute("data-position") === "left";
  var MAX_QUESTION = 2000, MAX_TURNS = 6, MAX_TURN_CHARS = 4000;

  var TEXT = {
    zh: {
      title: "在线助手", open: "打开在线助手", close: "关闭", send: "发送", placeholder: "请输入你的问题…",
      hello: "你好！有什么可以帮你？可以直接描述遇到的问题。", thinking: "正在查找答案…",
      sources: "参考资料", choose: "你可能想问：", helpful: "有帮助", unhelpful: "没帮助",
      thanks: "感谢反馈！", andon: "已为你起草加急工单，客服同事确认后会尽快联系你",
      andonSla: "（目标 {n} 分钟内响应）", notAllowed: "本网站未获授权使用在线助手，请联系网站管理员。",
      offline: "暂时连不上在线助手，请检查网络后重试。", failed: "出错了，请稍后重试。",
      tooLong: "问题太长了，请精简到 2000 字以内。", dialog: "在线助手对话"
    },
    en: {
      title: "Help assistant", open: "Open the help assistant", close: "Close", send: "Send",
      placeholder: "Type your question…", hello: "Hi! How can I help? Describe the problem you have.",
      thinking: "Looking for an answer…", sources: "Sources", choose: "Did you mean:", helpful: "Helpful",
      unhelpful: "Not helpful", thanks: "Thanks for the feedback!",
      andon: "An urgent ticket has been drafted for you; our support team will contact you once they confirm it",
      andonSla: " (target response: {n} minutes)", notAllowed: "This site is not allowed to use the help assistant; please tell the site's administrator.",
      offline: "Cannot reach the help assistant right now; check your network and try again.",
      failed: "Something went wrong; please try again later.", tooLong: "The question is too long (2000 characters at most).",
      dialog: "Help assistant conversation"
    }
  }[LANG];
  var TITLE = script.getAttribute("data-title") || TEXT.title;

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif}",
    ".launcher{position:fixed;bottom:20px;" + (LEFT ? "left" : "right") + ":20px;z-index:2147483000;width:56px;height:56px;",
    "border-radius:50%;border:0;background:#1f6feb;color:#fff;font-size:26px;line-height:56px;cursor:pointer;",
    "box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f0b400;outline-offset:2px}",
    ".panel{position:fixed;bottom:88px;" + (LEFT ? "left" : "right") + ":20px;z-index:2147483001;width:380px;max-width:calc(100vw - 24px);",
    "height:560px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#1f2328;",
    "border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;font-size:14px;line-height:1.6}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#1f6feb;color:#fff}",
    "header h2{margin:0;font-size:16px;font-weight:600}",
    ".close{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;width:36px;height:36px;border-radius:6px}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f6f8fa}",
    ".msg{margin:0 0 10px;padding:8px 12px;border-radius:10px;max-width:92%;white-space:pre-wrap;word-wrap:break-word}",
    ".user{margin-left:auto;background:#1f6feb;color:#fff}",
    ".bot{background:#fff;border:1px solid #d0d7de}",
    ".error{background:#fff1f0;border:1px solid #ffa39e;color:#a8071a}",
    ".muted{color:#57606a}",
    ".answer{margin:0}",
    ".sources{margin:8px 0 0;padding-top:6px;border-top:1px dashed #d0d7de;font-size:13px;color:#57606a;white-space:normal}",
    ".sources ol{margin:2px 0 0;padding-left:20px}",
    ".andon{margin:8px 0 0;padding:6px 8px;border-left:4px solid #d4380d;background:#fff7e6;white-space:normal}",
    ".choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px;white-space:normal}",
    ".choice{border:1px solid #1f6feb;background:#fff;color:#1f6feb;border-radius:14px;padding:4px 10px;cursor:pointer;font-size:13px;text-align:left}",
    ".rate{display:flex;gap:6px;margin-top:8px;align-items:center;white-space:normal}",
    ".rate button{border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer;padding:2px 8px;font-size:14px}",
    ".rate button[aria-pressed=true]{background:#ddf4ff;border-color:#1f6feb}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;background:#fff}",
    "textarea{flex:1;resize:none;height:42px;padding:8px;border:1px solid #d0d7de;border-radius:8px;font-size:14px;color:#1f2328;background:#fff}",
    ".send{border:0;background:#1f6feb;color:#fff;border-radius:8px;padding:0 14px;cursor:pointer;font-size:14px}",
    ".send:disabled{background:#8c959f;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    "@media (max-width:480px){.panel{left:0;right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}",
    ".launcher{bottom:14px}}"
  ].join("");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.indexOf("on") === 0) node.addEventListener(name.slice(2), attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // The page --------------------------------------------------------------------------------
  var host = el("div", { id: "copilot-widget", "data-copilot-widget": "" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("style", { text: CSS }));

  var launcher = el("button", { "class": "launcher", type: "button", "aria-label": TEXT.open,
    "aria-expanded": "false", "aria-controls": "copilot-panel", title: TITLE, text: "💬" });
  var closeButton = el("button", { "class": "close", type: "button", "aria-label": TEXT.close, text: "×" });
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": TEXT.dialog });
  var input = el("textarea", { "aria-label": TEXT.placeholder, placeholder: TEXT.placeholder,
    maxlength: String(MAX_QUESTION), rows: "1" });
  var send = el("button", { "class": "send", type: "submit", text: TEXT.send });
  var form = el("form", {}, [input, send]);
  var panel = el("section", { "class": "panel", id: "copilot-panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "copilot-title", hidden: "" }, [
    el("header", {}, [el("h2", { id: "copilot-title", text: TITLE }), closeButton]), log, form]);
  root.appendChild(launcher);
  root.appendChild(panel);

  var history = [];
  var busy = false;

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    if (!log.childElementCount) log.appendChild(el("p", { "class": "msg bot", text: TEXT.hello }));
    input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeButton.addEventListener("click", close);
  // On the document: focus may have left the panel (a rated, now disabled button) and Esc still closes it.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) { event.preventDefault(); close(); }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); submit(); });

  // Talking to the server -------------------------------------------------------------------
  function post(path, body) {
    return fetch(BASE + "/widget/api/" + path, {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "Content-Type": "application/json", "X-Widget-Key": KEY,
                 "Accept-Language": LANG === "en" ? "en" : "zh-CN" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) return data;
        var message = data && data.error && data.error.message;
        throw new Error(response.status === 403 ? TEXT.notAllowed : (message || TEXT.failed));
      });
    }, function () {
      // The browser hides why a cross-origin request failed. If the server answers an opaque
      // request, it is reachable: this page's origin is not allowed.
      return fetch(BASE + "/widget.js", { mode: "no-cors", cache: "no-store", credentials: "omit" })
        .then(function () { throw new Error(TEXT.notAllowed); },
              function () { throw new Error(TEXT.offline); });
    });
  }

  function submit(text) {
    var question = (text || input.value).trim();
    if (!question || busy) return;
    if (question.length > MAX_QUESTION) { showError(TEXT.tooLong); return; }
    input.value = "";
    log.appendChild(el("p", { "class": "msg user", text: question }));
    var pending = el("p", { "class": "msg bot muted", text: TEXT.thinking });
    log.appendChild(pending);
    scroll();
    setBusy(true);
    post("ask", { question: question, history: history.slice(-MAX_TURNS) }).then(function (data) {
      pending.remove();
      showAnswer(question, data);
      remember("user", question);
      remember("assistant", data.answer || "");
    }, function (error) {
      pending.remove();
      showError(error.message);
    }).then(function () { setBusy(false); input.focus(); });
  }

  function remember(role, content) {
    if (!content) return;
    history.push({ role: role, content: content.slice(0, MAX_TURN_CHARS) });
    history = history.slice(-MAX_TURNS);
  }

  function setBusy(value) {
    busy = value;
    send.disabled = value;
    log.setAttribute("aria-busy", value ? "true" : "false");
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function showError(message) {
    log.appendChild(el("p", { "class": "msg error", role: "alert", text: message }));
    scroll();
  }

  // Answer first, then the andon note, the sources (titles only), choices and the rating.
  function showAnswer(question, data) {
    var box = el("div", { "class": "msg bot" });
    box.appendChild(el("p", { "class": "answer", text: plain(data.answer || "") }));
    if (data.escalation) {
      var note = TEXT.andon + (data.escalation.sla_minutes ? TEXT.andonSla.replace("{n}", data.escalation.sla_minutes) : "");
      box.appendChild(el("p", { "class": "andon", role: "status", text: "🚨 " + note }));
    }
    if (data.citations && data.citations.length) {
      var list = el("ol");
      data.citations.forEach(function (c) { list.appendChild(el("li", { text: c.title })); });
      box.appendChild(el("div", { "class": "sources" }, [el("span", { text: TEXT.sources + "：" }), list]));
    }
    if (data.choices && data.choices.length) {
      var choices = el("div", { "class": "choices", role: "group", "aria-label": TEXT.choose },
        [el("span", { "class": "muted", text: TEXT.choose })]);
      data.choices.forEach(function (choice) {
        choices.appendChild(el("button", { "class": "choice", type: "button", text: choice,
          onclick: function () { submit(choice); } }));
      });
      box.appendChild(choices);
    }
    box.appendChild(rating(question, data.answer || ""));
    log.appendChild(box);
    scroll();
  }

  function rating(question, answer) {
    var row = el("div", { "class": "rate" });
    var status = el("span", { "class": "muted", role: "status" });
    function rate(value, button) {
      Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-pressed", "false"); b.disabled = true;
      });
      button.setAttribute("aria-pressed", "true");
      post("feedback", { question: question.slice(0, 2000), answer: answer.slice(0, 20000), rating: value })
        .then(function () { status.textContent = TEXT.thanks; },
              function (error) { status.textContent = error.message; });
    }
    var up = el("button", { type: "button", "aria-label": TEXT.helpful, title: TEXT.helpful,
      "aria-pressed": "false", text: "👍" });
    var down = el("button", { type: "button", "aria-label": TEXT.unhelpful, title: TEXT.unhelpful,
      "aria-pressed": "false", text: "👎" });
    up.addEventListener("click", function () { rate("up", up); });
    down.addEventListener("click", function () { rate("down", down); });
    row.appendChild(up); row.appendChild(down); row.appendChild(status);
    return row;
  }

  // Answers are Markdown; the widget shows plain text (no links, no HTML): **bold** and links lose
  // their marks, [n] citation markers stay and match the numbered sources.
  function plain(markdown) {
    return markdown
      .replace(/\*\*([^*]+)\*\*/g, "$1")
      .replace(/!?\[([^\]]+)\]\([^)]*\)/g, "$1")
      .replace(/^#{1,6}\s+/gm, "")
      .replace(/\n{3,}/g, "\n\n")
      .trim();
  }

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
