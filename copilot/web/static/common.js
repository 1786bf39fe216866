/* Shared helpers for every page: API calls, a small safe Markdown renderer, the confirm dialog, toasts. */
"use strict";

const Copilot = (() => {
  const KEY_STORAGE = "copilot.apiKey";

  // Icons: drawn here so no icon font or emoji font is needed; `<span data-icon="name">` in pages.
  const ICONS = {
    key: '<circle cx="8" cy="15" r="4.5"/><path d="M11.2 11.8L20 3M16.5 6.5l3 3M13.8 9.2l2 2"/>',
    up: '<path d="M7 11v9H4v-9h3zM7 11l4-7c1.5 0 2.6 1.1 2.3 2.7L12.8 9H18a2 2 0 0 1 2 2.3l-1.2 6.9A2.2 2.2 0 0 1 16.6 20H7"/>',
    down: '<g transform="rotate(180 12 12)"><path d="M7 11v9H4v-9h3zM7 11l4-7c1.5 0 2.6 1.1 2.3 2.7L12.8 9H18a2 2 0 0 1 2 2.3l-1.2 6.9A2.2 2.2 0 0 1 16.6 20H7"/></g>',
    shield: '<path d="M12 3l7 3v5c0 4.5-3 8.3-7 10-4-1.7-7-5.5-7-10V6l7-3z"/><path d="M9 12l2 2 4-4"/>',
    search: '<circle cx="11" cy="11" r="6.5"/><path d="M20 20l-4.3-4.3"/>',
    map: '<path d="M9 4L3 6v14l6-2 6 2 6-2V4l-6 2-6-2zM9 4v14M15 6v14"/>',
    check: '<circle cx="12" cy="12" r="9"/><path d="M8 12.5l2.8 2.8L16 9.5"/>',
    trend: '<path d="M3 17l6-6 4 4 8-8"/><path d="M15 7h6v6"/>',
    alert: '<path d="M12 3.5l9.5 16.5h-19L12 3.5z"/><path d="M12 10v4.5M12 17.2v.3"/>',
    file: '<path d="M6 3h8l5 5v13H6z"/><path d="M14 3v5h5M9 13h6M9 17h6"/>',
    save: '<path d="M5 3h11l3 3v15H5z"/><path d="M8 3v5h7V3M8 21v-7h8v7"/>',
    share: '<path d="M4 13v7h16v-7M12 3v12M7 8l5-5 5 5"/>',
    mail: '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3.5 7l8.5 6 8.5-6"/>',
    plus: '<path d="M12 5v14M5 12h14"/>',
    close: '<path d="M6 6l12 12M18 6L6 18"/>',
    book: '<path d="M4 5a2 2 0 0 1 2-2h13v16H6a2 2 0 0 0-2 2V5z"/><path d="M4 19a2 2 0 0 1 2-2h13v4H6"/>',
    clock: '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
  };

  function icon(name, cls = "") {
    return `<svg class="icon ${cls}" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.9" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ""}</svg>`;
  }

  function fillIcons(root = document) {
    root.querySelectorAll("[data-icon]:empty").forEach((node) => { node.innerHTML = icon(node.dataset.icon); });
  }

  function esc(text) {
    return String(text ?? "").replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function headers(json = true) {
    // Errors come back in Chinese whatever the browser's own language is.
    const h = { "Accept-Language": "zh-CN" };
    if (json) h["Content-Type"] = "application/json";
    const key = localStorage.getItem(KEY_STORAGE);
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async function errorFrom(response) {
    let message = `请求失败（HTTP ${response.status}）`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
      else if (body && body.detail) message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (_) { /* not JSON */ }
    // Asking who I am is how every page starts: a 401 there shows the sign-in choices, not a dialog.
    // With single sign-on offered, the top bar's sign-in link is the way in; the key button still opens the dialog.
    if (response.status === 401 && new URL(response.url).pathname !== "/api/me" && !document.getElementById("sso-login")) {
      openKeyDialog();
    }
    if (response.status === 404 && message.startsWith("Not Found")) message = "服务器上还没有这个功能（接口未找到）";
    const error = new Error(message);
    error.status = response.status;
    return error;
  }

  /** Call the JSON API; throws an Error whose message is fit to show. */
  async function api(method, url, body) {
    let response;
    try {
      response = await fetch(url, { method, headers: headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      throw new Error("连不上服务器，请检查网络后重试");
    }
    if (!response.ok) throw await errorFrom(response);
    return response.status === 204 ? null : response.json();
  }

  // Markdown ----------------------------------------------------------------------------------
  function inline(text, opts) {
    let html = esc(text);
    html = html.replace(/`([^`]+)`/g, "<code>$1</code>");
    html = html.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
    html = html.replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
    html = html.replace(/\[([^\]]+)\]\(((?:https?:\/\/|\/)[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
    if (opts && opts.cite) {
      html = html.replace(/\[(\d{1,2})\]/g, (m, n) => (
        Number(n) >= 1 && Number(n) <= opts.cite ? `<button type="button" class="cite" data-cite="${n}" aria-label="查看来源 ${n}">${n}</button>` : m));
    }
    return html;
  }

  /** Render a small, safe subset of Markdown (everything is escaped first). */
  function markdown(source, opts = {}) {
    const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
    const out = [];
    let para = [];
    const lists = []; // stack of {type, indent}
    const flushPara = () => { if (para.length) { out.push(`<p>${para.map((l) => inline(l, opts)).join("<br>")}</p>`); para = []; } };
    const closeLists = (indent = -1) => {
      while (lists.length && lists[lists.length - 1].indent > indent) out.push(`</li></${lists.pop().type}>`);
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (/^\s*```/.test(line)) {
        flushPara(); closeLists();
        const code = [];
        while (++i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i]);
        out.push(`<pre><code>${esc(code.join("\n"))}</code></pre>`);
        continue;
      }
      if (!line.trim()) { flushPara(); if (!/^\s*([-*+]|\d+[.)])\s/.test(lines[i + 1] || "")) closeLists(); continue; }
      let m;
      if ((m = line.match(/^(#{1,4})\s+(.*)$/))) {
        flushPara(); closeLists();
        const level = Math.min(m[1].length + 1, 5);
        out.push(`<h${level}>${inline(m[2], opts)}</h${level}>`);
      } else if (/^\s*(-{3,}|\*{3,})\s*$/.test(line)) {
        flushPara(); closeLists(); out.push("<hr>");
      } else if ((m = line.match(/^>\s?(.*)$/))) {
        flushPara(); closeLists(); out.push(`<blockquote>${inline(m[1], opts)}</blockquote>`);
      } else if (/^\s*\|.*\|\s*$/.test(line)) {
        flushPara(); closeLists();
        const rows = [];
        while (i < lines.length && /^\s*\|.*\|\s*$/.test(lines[i])) rows.push(lines[i++]);
        i--;
        const cells = (row) => row.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
        const isRule = (row) => cells(row).every((c) => /^:?-{2,}:?$/.test(c));
        const head = rows.length > 1 && isRule(rows[1]) ? cells(rows[0]) : null;
        const body = rows.filter((r, idx) => !(head && idx <= 1));
        out.push('<div class="table-wrap"><table>' +
          (head ? `<thead><tr>${head.map((c) => `<th>${inline(c, opts)}</th>`).join("")}</tr></thead>` : "") +
          `<tbody>${body.map((r) => `<tr>${cells(r).map((c) => `<td${/^[\d\-–~至:：. ]{8,}$/.test(c) ? ' class="nowrap"' : ""}>${inline(c, opts)}</td>`).join("")}</tr>`).join("")}</tbody></table></div>`);
      } else if ((m = line.match(/^(\s*)([-*+]|\d+[.)])\s+(.*)$/))) {
        flushPara();
        const indent = m[1].length;
        const type = /\d/.test(m[2]) ? "ol" : "ul";
        const top = lists[lists.length - 1];
        if (!top || indent > top.indent) {
          out.push(`<${type}>`); lists.push({ type, indent });
        } else {
          closeLists(indent);
          const now = lists[lists.length - 1];
          if (now && now.type !== type && now.indent === indent) { out.push(`</li></${lists.pop().type}><${type}>`); lists.push({ type, indent }); }
          else if (now) out.push("</li>");
          else { out.push(`<${type}>`); lists.push({ type, indent }); }
        }
        out.push(`<li>${inline(m[3], opts)}`);
      } else if (lists.length && /^\s{2,}\S/.test(line)) {
        out.push(`<br>${inline(line.trim(), opts)}`);
      } else {
        closeLists();
        para.push(line);
      }
    }
    flushPara(); closeLists();
    return out.join("\n");
  }

  // Toasts ------------------------------------------------------------------------------------
  function toast(message, kind = "info", ms = 3600) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const node = document.createElement("div");
    node.className = `toast toast-${kind}`;
    node.textContent = message;
    box.appendChild(node);
    setTimeout(() => { node.classList.add("leaving"); setTimeout(() => node.remove(), 300); }, ms);
  }

  // Actions -----------------------------------------------------------------------------------
  // Labels come from rules.yaml `actions` (rendered into the page); these are the fallbacks.
  const ACTION_TYPES = Object.assign({
    escalation_ticket: "安灯升级工单", send_case_onepager: "发送案例一页纸", save_plan: "保存客户成功计划", share_plan: "分享客户成功计划",
  }, JSON.parse(document.documentElement.dataset.actionLabels || "{}"));
  const STATUS = { proposed: "待确认", approved: "已批准", rejected: "已拒绝", executing: "执行中", executed: "已执行", failed: "执行失败" };
  const ARG_LABELS = { tier: "规模", industry: "行业", city: "城市", province: "省份", annual_fee: "年费（元）", company: "案例公司",
    situation: "情境", products: "产品", recipient: "收件人", prospect: "客户", case_id: "案例", account_tier: "客户规模", sla_minutes: "响应时限（分钟）",
    queue: "处理队列", question: "问题", customer: "客户", channel: "渠道", to: "发送给", file: "文件", path: "保存位置",
    name: "名称", title: "标题", format: "格式", withheld: "已略去内部资料（条）", audiences: "所含知识范围" };

  function actionType(type) { return ACTION_TYPES[type] || type; }
  function statusLabel(status) { return STATUS[status] || status; }

  function shortValue(value) {
    if (value === null || value === undefined || value === "") return "";
    if (typeof value === "object") {
      if (Array.isArray(value)) return value.map(shortValue).filter(Boolean).join("、");
      if (value.name || value.company) return value.name || value.company;
      return Object.entries(value).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length) && typeof v !== "object")
        .map(([k, v]) => `${ARG_LABELS[k] || k}：${v}`).join("；");
    }
    const text = String(value);
    return text.length > 160 ? `${text.slice(0, 160)}…` : text;
  }

  /** The facts of an action that say what will happen, for the confirm dialog and the inbox. */
  function actionFacts(action) {
    const facts = [["操作", actionType(action.type)], ["说明", action.summary]];
    const args = action.arguments || {};
    for (const [key, value] of Object.entries(args)) {
      // The note on what was left out is shown on its own, prominently; the list behind it is in the note.
      if (["markdown", "plan", "drafted_answer", "content", "body", "sources", "left_out_note", "left_out", "issue_key"].includes(key)) continue;
      const shown = key === "audiences" && Array.isArray(value)
        ? value.map((a) => ({ public: "对外", internal: "内部" }[a] || a)).join("、") : shortValue(value);
      if (shown) facts.push([ARG_LABELS[key] || key, shown]);
    }
    if (action.proposed_by) facts.push(["发起人", action.proposed_by]);
    return facts;
  }

  function actionMarkdown(action) {
    const a = action.arguments || {};
    return a.markdown || a.content || a.body || a.drafted_answer || "";
  }

  function factsHtml(facts) {
    return facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  }

  /**
   * Show exactly what will happen and wait for an explicit click (or Enter on the focused
   * confirm button). Resolves to "confirm", "cancel" or "dismiss" (Escape).
   */
  function askConfirm(action, { markdownText, cancelLabel = "取消（拒绝）", confirmLabel = "确认执行" } = {}) {
    const dialog = document.getElementById("confirm-dialog");
    const text = markdownText ?? actionMarkdown(action);
    document.getElementById("confirm-facts").innerHTML = factsHtml(actionFacts(action));
    const preview = document.getElementById("confirm-preview");
    preview.hidden = !text;
    document.getElementById("confirm-markdown").innerHTML = text ? markdown(text) : "";
    document.getElementById("confirm-cancel").textContent = cancelLabel;
    const ok = document.getElementById("confirm-ok");
    ok.textContent = confirmLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? "confirm"
        : dialog.returnValue === "cancel" ? "cancel" : "dismiss"), { once: true });
      dialog.showModal();
      ok.focus();
    });
  }

  async function decide(actionId, decision) {
    return api("POST", `/api/actions/${encodeURIComponent(actionId)}/confirm`, { decision });
  }

  /** Confirm dialog, then approve or reject; toasts the outcome and returns the updated action. */
  async function confirmAction(action, options = {}) {
    const choice = await askConfirm(action, options);
    if (choice === "dismiss" || (choice === "cancel" && options.cancelRejects === false)) { toast("操作仍在“待确认”里，随时可以处理", "info"); refreshBadge(); return null; }
    const decision = choice === "confirm" ? "approve" : "reject";
    try {
      const result = await decide(action.id, decision);
      const status = (result && (result.status || (result.action && result.action.status))) || (decision === "approve" ? "approved" : "rejected");
      if (status === "failed") toast(`执行失败：${(result && (result.error || (result.action && result.action.error))) || "请到历史记录查看"}`, "error", 6000);
      else toast(decision === "approve" ? `已确认：${actionType(action.type)}（${statusLabel(status)}）` : "已拒绝，不会执行", decision === "approve" ? "success" : "info");
      refreshBadge();
      return result;
    } catch (error) {
      toast(error.message, "error", 6000);
      return null;
    }
  }

  async function refreshBadge() {
    const badge = document.getElementById("pending-badge");
    if (!badge) return;
    try {
      const list = await api("GET", "/api/actions?status=proposed");
      const items = Array.isArray(list) ? list : (list.actions || list.items || []);
      badge.textContent = items.length;
      badge.hidden = !items.length;
    } catch (_) { badge.hidden = true; }
  }

  // API key -----------------------------------------------------------------------------------
  function openKeyDialog() {
    const dialog = document.getElementById("key-dialog");
    if (!dialog || dialog.open) return;
    document.getElementById("key-input").value = localStorage.getItem(KEY_STORAGE) || "";
    dialog.showModal();
  }

  function initKeyDialog() {
    const dialog = document.getElementById("key-dialog");
    if (!dialog) return;
    document.getElementById("key-button").addEventListener("click", openKeyDialog);
    dialog.addEventListener("close", () => {
      const value = document.getElementById("key-input").value.trim();
      if (dialog.returnValue === "save" && value) { localStorage.setItem(KEY_STORAGE, value); toast("密钥已保存，请重试刚才的操作", "success"); showMe(); }
      if (dialog.returnValue === "clear") { localStorage.removeItem(KEY_STORAGE); toast("密钥已清除"); showMe(); }
    });
  }

  function formatTime(value) {
    if (!value) return "";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function busy(button, on, label) {
    if (!button) return;
    if (on) { button.dataset.label = button.textContent; button.textContent = label || "处理中…"; button.disabled = true; button.classList.add("is-busy"); }
    else { button.textContent = button.dataset.label || button.textContent; button.disabled = false; button.classList.remove("is-busy"); }
  }

  // Who am I: the person the key or the signed-in session names, and a sign-in link when the
  // server offers single sign-on and nobody is signed in yet.
  async function showMe() {
    const chip = document.getElementById("me");
    const login = document.getElementById("sso-login");
    if (!chip) return;
    try {
      const me = await api("GET", "/api/me");
      document.getElementById("me-name").textContent = me.name === "local" ? "本机用户" : me.name;
      document.getElementById("me-role").textContent = me.role_label;
      chip.hidden = false;
      const logout = document.getElementById("sso-logout");
      if (logout && me.signed_in && !localStorage.getItem(KEY_STORAGE)) logout.hidden = false;
      if (me.role === "admin") document.body.classList.add("is-admin");
      else document.querySelectorAll('[data-nav="users"]').forEach((link) => { link.hidden = true; });
    } catch (error) {
      document.querySelectorAll('[data-nav="users"]').forEach((link) => { link.hidden = true; });
      if (error.status === 401 && login) {  // rendered only when the server offers single sign-on
        login.href = `/auth/login?next=${encodeURIComponent(location.pathname + location.search)}`;
        login.hidden = false;
      }
    }
  }

  fillIcons();
  document.addEventListener("DOMContentLoaded", () => { fillIcons(); initKeyDialog(); refreshBadge(); showMe(); });

  return { api, esc, icon, fillIcons, markdown, toast, askConfirm, confirmAction, decide, actionFacts, actionMarkdown, factsHtml,
    actionType, statusLabel, formatTime, busy, refreshBadge, headers, errorFrom };
})();
