/* Assistant chat: streams /v1/chat/completions (model copilot-<role>), answer first, then why, then sources. */
"use strict";

(() => {
  const { esc, markdown, toast, api, headers, errorFrom } = Copilot;
  const root = document.querySelector(".assistant");
  const role = root.dataset.role;
  const storageKey = `copilot.chat.${role}`;
  const log = document.getElementById("chat-log");
  const empty = document.getElementById("chat-empty");
  const form = document.getElementById("composer");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const panel = document.getElementById("source-panel");
  const scrim = document.getElementById("source-scrim");
  const KINDS = { case: "案例", faq: "FAQ", playbook: "打法", doc: "文档" };
  const HISTORY_EXCHANGES = 3; // = the server's 6 earlier turns (copilot/conversation.py MAX_TURNS)

  let turns = load();
  let streaming = false;

  function load() {
    try { return JSON.parse(sessionStorage.getItem(storageKey)) || []; } catch (_) { return []; }
  }
  function save() {
    try { sessionStorage.setItem(storageKey, JSON.stringify(turns.filter((t) => t.extra))); } catch (_) { /* full */ }
  }

  /** The text the copilot streams ends with footnotes (sources, suggestions); the UI shows them as chips. */
  function answerText(content, extra) {
    if (extra) {
      const lines = [];
      if (extra.citations && extra.citations.length) {
        lines.push("\n来源：", ...extra.citations.map((c, i) => `[${i + 1}] ${c.title} — ${c.source}`));
      }
      if (extra.choices && extra.choices.length) lines.push("\n你可能想问：", ...extra.choices.map((c) => `- ${c}`));
      const suffix = lines.length ? `\n${lines.join("\n")}` : "";
      if (suffix && content.endsWith(suffix)) return content.slice(0, -suffix.length);
    }
    const cut = content.search(/\n\n(来源：\n\[1\] |你可能想问：\n- )/);
    return cut >= 0 ? content.slice(0, cut) : content;
  }

  // Rendering ---------------------------------------------------------------------------------
  function userNode(text) {
    const node = document.createElement("article");
    node.className = "msg msg-user";
    node.innerHTML = `<div class="bubble">${esc(text)}</div>`;
    return node;
  }

  function botNode() {
    const node = document.createElement("article");
    node.className = "msg msg-bot";
    node.innerHTML = '<div class="avatar" aria-hidden="true">实</div><div class="bubble"><div class="markdown answer"><span class="typing"><i></i><i></i><i></i></span></div></div>';
    return node;
  }

  function renderBot(node, turn) {
    const extra = turn.extra;
    const text = answerText(turn.content, extra);
    const bubble = node.querySelector(".bubble");
    if (!extra) {
      bubble.querySelector(".answer").innerHTML = markdown(text) + '<span class="caret" aria-hidden="true"></span>';
      return;
    }
    const citations = extra.citations || [];
    const choices = extra.choices || [];
    node.classList.toggle("ungrounded", !extra.grounded);
    const parts = [];
    if (!extra.grounded) parts.push(`<div class="ungrounded-flag" data-ungrounded>${Copilot.icon("alert")}<strong>未找到可靠依据</strong><span>助手不编答案</span></div>`);
    parts.push(`<div class="markdown answer">${markdown(text, { cite: citations.length })}</div>`);
    if (extra.explanation) parts.push(`<p class="explanation"><span class="label">为什么这样答</span>${esc(extra.explanation)}</p>`);
    if (citations.length) {
      parts.push(`<div class="citations"><span class="label">来源</span>${citations.map((c, i) => (
        `<button type="button" class="cite-chip" data-cite="${i + 1}" title="${esc(c.source)}"><b>${i + 1}</b><span class="kind kind-${esc(c.kind)}">${esc(KINDS[c.kind] || c.kind)}</span>${esc(c.title)}</button>`)).join("")}</div>`);
    }
    parts.push('<div class="choices-slot"></div>');
    if (extra.actions && extra.actions.length) {
      parts.push(`<div class="action-card"><div class="action-card-head">${Copilot.icon("shield")} 待确认操作</div>${extra.actions.map((a) => (
        `<div class="action-line"><span class="badge badge-${esc(a.status)}">${esc(Copilot.statusLabel(a.status))}</span>${esc(a.summary)}</div>` +
        (a.arguments && a.arguments.left_out_note ? `<p class="muted small">${esc(a.arguments.left_out_note)}</p>` : ""))).join("")}
        <a class="btn btn-primary btn-small" href="/actions">去确认</a><span class="muted small">确认前不会提交任何工单或消息</span></div>`);
    }
    const confidence = Math.round((extra.confidence || 0) * 100);
    parts.push(`<footer class="msg-meta"><span class="muted small">依据充分度 ${confidence}% · ${extra.composer === "llm" ? "大模型撰写" : "模板撰写"}${extra.llm_fallback ? "（大模型失败，已改用模板）" : ""}</span>
      <span class="feedback"><button type="button" class="icon-button" data-rate="up" aria-label="有帮助" title="有帮助">${Copilot.icon("up")}</button><button type="button" class="icon-button" data-rate="down" aria-label="没帮助" title="没帮助">${Copilot.icon("down")}</button></span></footer>
      <form class="feedback-form" hidden><textarea class="input" rows="2" maxlength="2000" placeholder="哪里不对？缺了什么？（可选）"></textarea>
      <div class="form-actions"><button type="button" class="btn btn-ghost btn-small" data-fb-cancel>取消</button><button type="submit" class="btn btn-primary btn-small">提交反馈</button></div></form>`);
    bubble.innerHTML = parts.join("");

    // Suggestions listed in the answer become clickable; the rest are chips.
    const remaining = new Set(choices);
    bubble.querySelectorAll(".answer li").forEach((li) => {
      const q = li.textContent.trim();
      if (remaining.has(q)) { li.classList.add("li-choice"); li.dataset.ask = q; li.tabIndex = 0; li.setAttribute("role", "button"); remaining.delete(q); }
    });
    if (remaining.size) {
      bubble.querySelector(".choices-slot").outerHTML = `<div class="choices"><span class="label">你可能想问</span>${[...remaining].map((q) => (
        `<button type="button" class="chip chip-suggest" data-ask="${esc(q)}">${esc(q)}</button>`)).join("")}</div>`;
    }
    if (turn.rated) markRated(node, turn.rated);
  }

  function markRated(node, rating) {
    node.querySelectorAll("[data-rate]").forEach((b) => { b.disabled = true; b.classList.toggle("active", b.dataset.rate === rating); });
    const meta = node.querySelector(".feedback");
    if (meta && !meta.querySelector(".thanks")) meta.insertAdjacentHTML("beforeend", '<span class="thanks small">感谢反馈</span>');
  }

  function renderAll() {
    log.querySelectorAll(".msg").forEach((n) => n.remove());
    empty.hidden = turns.length > 0;
    turns.forEach((turn, index) => {
      log.appendChild(userNode(turn.question));
      const node = botNode();
      node.dataset.turn = index;
      log.appendChild(node);
      renderBot(node, turn);
    });
    scrollDown();
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; window.scrollTo(0, document.body.scrollHeight); }

  // Talking to the copilot --------------------------------------------------------------------
  /** Earlier exchanges travel along so that a follow-up ("那上海的呢？") inherits the question before it;
   * the copilot reads only the last few turns, so only those are sent. */
  function messagesFor(question) {
    const messages = [];
    turns.filter((t) => t.extra).slice(-HISTORY_EXCHANGES).forEach((t) => {
      messages.push({ role: "user", content: t.question });
      messages.push({ role: "assistant", content: answerText(t.content, t.extra) });
    });
    messages.push({ role: "user", content: question });
    return messages;
  }

  async function ask(question) {
    question = question.trim();
    if (!question || streaming) return;
    streaming = true;
    send.disabled = true;
    empty.hidden = true;
    const turn = { question, content: "", extra: null };
    const messages = messagesFor(question);
    turns.push(turn);
    log.appendChild(userNode(question));
    const node = botNode();
    node.dataset.turn = turns.length - 1;
    log.appendChild(node);
    scrollDown();
    try {
      const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(),
        body: JSON.stringify({ model: `copilot-${role}`, stream: true, messages }) });
      if (!response.ok) throw await errorFrom(response);
      await readStream(response, (data) => {
        const choice = data.choices && data.choices[0];
        if (choice && choice.delta && choice.delta.content) turn.content += choice.delta.content;
        if (data.copilot) turn.extra = data.copilot;
        renderBot(node, turn);
        scrollDown();
      });
      if (!turn.extra) throw new Error("回答不完整，请重试");
      save();
      Copilot.refreshBadge();
    } catch (error) {
      turns.pop();
      node.classList.add("msg-error");
      node.querySelector(".bubble").innerHTML = `<div class="notice notice-error"><strong>没有拿到回答</strong>${esc(error.message)}</div>
        <button type="button" class="btn btn-ghost btn-small" data-retry="${esc(question)}">重试</button>`;
    } finally {
      streaming = false;
      send.disabled = false;
    }
  }

  async function readStream(response, onData) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const payload = line.slice(5).trim();
          if (payload === "[DONE]") return;
          try { onData(JSON.parse(payload)); } catch (_) { /* ignore a broken line */ }
        }
      }
    }
  }

  // Sources -----------------------------------------------------------------------------------
  function openSource(turnIndex, n) {
    const turn = turns[turnIndex];
    const citation = turn && turn.extra && turn.extra.citations[n - 1];
    if (!citation) return;
    document.getElementById("source-kind").textContent = `[${n}] ${KINDS[citation.kind] || citation.kind}`;
    document.getElementById("source-title").textContent = citation.title;
    document.getElementById("source-id").textContent = `出处：${citation.source}`;
    // "问：… 答：… 做法：…" labels at line starts read better in bold.
    document.getElementById("source-text").innerHTML = markdown(citation.text.replace(/^([^\s：:*#|-]{1,6})：/gm, "**$1**："));
    panel.hidden = false;
    scrim.hidden = false;
    requestAnimationFrame(() => panel.classList.add("open"));
    document.getElementById("source-close").focus();
  }

  function closeSource() {
    panel.classList.remove("open");
    panel.hidden = true;
    scrim.hidden = true;
  }

  // Feedback ----------------------------------------------------------------------------------
  async function rate(node, rating, comment) {
    const turn = turns[Number(node.dataset.turn)];
    if (!turn) return;
    const body = { question: turn.question, answer: answerText(turn.content, turn.extra), rating, role };
    if (comment) body.comment = comment;
    try {
      await api("POST", "/api/feedback", body);
      turn.rated = rating;
      save();
      markRated(node, rating);
      node.querySelector(".feedback-form").hidden = true;
      toast(rating === "up" ? "谢谢！这条回答会被当作好例子" : "收到，知识管理员会在“知识缺口”里看到这条", "success");
    } catch (error) { toast(error.message, "error"); }
  }

  // Events ------------------------------------------------------------------------------------
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value;
    if (!question.trim()) return;
    input.value = "";
    autosize();
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function autosize() { input.style.height = "auto"; input.style.height = `${Math.min(input.scrollHeight, 180)}px`; }
  input.addEventListener("input", autosize);

  document.getElementById("new-chat").addEventListener("click", () => {
    if (streaming) return;
    turns = [];
    save();
    renderAll();
    input.focus();
  });

  root.addEventListener("click", (event) => {
    const target = event.target.closest("[data-ask],[data-cite],[data-rate],[data-retry],[data-fb-cancel]");
    if (!target) return;
    const node = target.closest(".msg");
    if (target.dataset.ask !== undefined) ask(target.dataset.ask);
    else if (target.dataset.retry !== undefined) { node.previousElementSibling.remove(); node.remove(); ask(target.dataset.retry); }
    else if (target.dataset.cite !== undefined) openSource(Number(node.dataset.turn), Number(target.dataset.cite));
    else if (target.dataset.rate === "up") rate(node, "up");
    else if (target.dataset.rate === "down") {
      const fb = node.querySelector(".feedback-form");
      fb.hidden = false;
      fb.querySelector("textarea").focus();
    } else if (target.dataset.fbCancel !== undefined) target.closest(".feedback-form").hidden = true;
  });

  root.addEventListener("keydown", (event) => {
    const li = event.target.closest && event.target.closest(".li-choice");
    if (li && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); ask(li.dataset.ask); }
  });

  root.addEventListener("submit", (event) => {
    const fb = event.target.closest(".feedback-form");
    if (!fb) return;
    event.preventDefault();
    rate(fb.closest(".msg"), "down", fb.querySelector("textarea").value.trim());
  });

  document.getElementById("source-close").addEventListener("click", closeSource);
  scrim.addEventListener("click", closeSource);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !panel.hidden) closeSource(); });

  renderAll();
  if (input.dataset.prefill) { input.value = input.dataset.prefill; autosize(); }
  input.focus();
})();
