/* Actions inbox: pending actions to approve or reject, and the history with its audit trail;
   an action that failed or was cut short can be run again from the history (重试). */
"use strict";

(() => {
  const { api, esc, icon, toast, markdown, confirmAction, decide, actionFacts, actionMarkdown, factsHtml, actionType,
    statusLabel, formatTime, refreshBadge, busy } = Copilot;
  const pending = document.getElementById("pending");
  const history = document.getElementById("history");
  const EVENTS = { proposed: "提出", approved: "批准", rejected: "拒绝", executed: "执行完成", failed: "执行失败", executing: "开始执行", reconciled: "中断后核对" };
  const TYPE_ICONS = { escalation_ticket: "alert", save_plan: "save", share_plan: "share", send_case_onepager: "mail" };
  // Approved but not running (a run cut short is settled as failed at start) or failed: a retry runs it again.
  const RETRYABLE = ["approved", "failed"];
  let byId = {};

  // What an outbound artefact left out (internal items); shown apart, not as one more fact.
  const leftOutNote = (a) => String((a.arguments || {}).left_out_note || "").trim();
  function withoutNote(a) {
    const { left_out_note: _note, ...args } = a.arguments || {};
    return { ...a, arguments: args };
  }
  function leftOutHtml(a, id = "") {
    const note = leftOutNote(a);
    return note ? `<div class="notice notice-warn left-out-note" role="note"${id ? ` id="${id}"` : ""}><strong>注意：有内部内容未包含在发出的内容里</strong>${esc(note)}</div>` : "";
  }

  const asList = (data) => (Array.isArray(data) ? data : (data.actions || data.items || []));

  function pendingCard(a) {
    const text = actionMarkdown(a);
    return `<article class="card inbox-card" data-action="${esc(a.id)}">
      <header class="inbox-head">
        <span class="type-icon type-${esc(a.type)}" aria-hidden="true">${icon(TYPE_ICONS[a.type] || "file")}</span>
        <div class="grow"><h3>${esc(actionType(a.type))}</h3><p class="muted small">${esc(formatTime(a.created_at))} · ${esc(a.proposed_by || "")}${a.role ? ` · ${esc(a.role)}` : ""}</p></div>
        <span class="badge badge-${esc(a.status)}">${esc(statusLabel(a.status))}</span>
      </header>
      ${leftOutHtml(a)}
      <dl class="confirm-facts">${factsHtml(actionFacts(withoutNote(a)).slice(1))}</dl>
      ${text ? `<details class="preview"><summary>查看内容</summary><div class="markdown">${markdown(text)}</div></details>` : ""}
      <footer class="inbox-foot">
        <button type="button" class="btn btn-ghost" data-reject="${esc(a.id)}">拒绝</button>
        <button type="button" class="btn btn-primary" data-approve="${esc(a.id)}">批准并执行</button>
      </footer>
    </article>`;
  }

  function outcome(a) {
    if (a.error) return `<span class="error-text">${esc(a.error)}</span>`;
    if (a.result && typeof a.result === "object") {
      const parts = Object.entries(a.result).map(([name, value]) => {
        const shown = value && typeof value === "object"
          ? Object.entries(value).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => `${k}: ${v}`).join("，")
          : String(value);
        return `<span class="result-item"><b>${esc(name)}</b> ${esc(shown)}</span>`;
      });
      return parts.join("") || "—";
    }
    return a.comment ? esc(a.comment) : "—";
  }

  function historyRow(a) {
    return `<article class="history-row" data-action="${esc(a.id)}">
      <div class="history-main">
        <span class="badge badge-${esc(a.status)}">${esc(statusLabel(a.status))}</span>
        <div class="grow">
          <div class="history-title">${esc(actionType(a.type))}：${esc(a.summary)}</div>
          <div class="muted small">${esc(formatTime(a.created_at))} 由 ${esc(a.proposed_by || "—")} 提出${a.decided_by ? ` · 由 <b class="decided-by">${esc(a.decided_by)}</b> ${a.status === "rejected" ? "拒绝" : "批准"}` : ""}${a.attempts ? ` · 执行 ${a.attempts} 次` : ""}</div>
          <div class="history-outcome small">${a.status === "proposed" ? "等待确认" : outcome(a)}</div>
          ${leftOutNote(a) ? `<div class="left-out-line small">${esc(leftOutNote(a))}</div>` : ""}
        </div>
        ${RETRYABLE.includes(a.status) ? `<button type="button" class="btn btn-primary btn-small" data-retry="${esc(a.id)}">重试</button>` : ""}
        <button type="button" class="btn btn-ghost btn-small" data-trail="${esc(a.id)}" aria-expanded="false">审计记录</button>
      </div>
      <ol class="trail" hidden></ol>
    </article>`;
  }

  function empty(text) { return `<div class="empty-state"><div class="empty-icon" aria-hidden="true">${icon("check")}</div><p>${text}</p></div>`; }

  async function loadPending() {
    try {
      const list = asList(await api("GET", "/api/actions?status=proposed"));
      list.forEach((a) => { byId[a.id] = a; });
      document.getElementById("pending-count").textContent = list.length || "";
      pending.innerHTML = list.length ? list.map(pendingCard).join("") : empty("没有待确认的操作。助手提出的发送、保存、升级等操作会出现在这里。");
    } catch (error) {
      pending.innerHTML = `<div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div>`;
    }
  }

  async function loadHistory() {
    try {
      const list = asList(await api("GET", "/api/actions"));
      list.forEach((a) => { byId[a.id] = a; });
      history.innerHTML = list.length ? list.map(historyRow).join("") : empty("还没有任何操作记录。");
    } catch (error) {
      history.innerHTML = `<div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div>`;
    }
  }

  async function showTrail(button) {
    const row = button.closest(".history-row");
    const trail = row.querySelector(".trail");
    const open = trail.hidden;
    trail.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (!open) return;
    trail.innerHTML = '<li class="muted">加载中…</li>';
    try {
      const entries = (await api("GET", `/api/audit?subject=${encodeURIComponent(row.dataset.action)}`)).slice().sort((a, b) => a.id - b.id);
      trail.innerHTML = entries.length ? entries.map((e) => `<li><span class="trail-event ev-${esc(e.event)}">${esc(EVENTS[e.event] || e.event)}</span>
        <span>${esc(formatTime(e.at))}</span><span class="muted">${esc(e.actor)}</span>
        ${e.payload && (e.payload.error || e.payload.comment) ? `<span class="muted small">${esc(e.payload.error || e.payload.comment)}</span>` : ""}</li>`).join("")
        : '<li class="muted">没有审计记录</li>';
    } catch (error) {
      trail.innerHTML = `<li class="error-text">${esc(error.message)}</li>`;
    }
  }

  /** The shared confirm dialog, with the left-out note above the facts while it is open. */
  async function approve(action) {
    const note = leftOutHtml(action, "confirm-left-out");
    // Skipped if the shared dialog (common.js) renders the note itself one day.
    if (note && !document.querySelector("#confirm-dialog .left-out-note")) {
      document.getElementById("confirm-facts").insertAdjacentHTML("beforebegin", note);
    }
    try {
      return await confirmAction(withoutNote(action), { cancelLabel: "返回", confirmLabel: "批准并执行", cancelRejects: false });
    } finally {
      document.getElementById("confirm-left-out")?.remove();
    }
  }

  async function retry(button) {
    busy(button, true, "重试中…");
    try {
      const result = await api("POST", `/api/actions/${encodeURIComponent(button.dataset.retry)}/retry`);
      if (result.status === "failed") toast(`重试后仍然失败：${result.error || "请查看审计记录"}`, "error", 6000);
      else toast(`已重新执行：${actionType(result.type)}（${statusLabel(result.status)}）`, "success");
    } catch (error) {
      toast(error.message, "error", 6000);
    }
    loadHistory();
  }

  function showTab(name) {
    document.querySelectorAll("[data-tab]").forEach((t) => { t.classList.toggle("active", t.dataset.tab === name); t.setAttribute("aria-selected", String(t.dataset.tab === name)); });
    pending.hidden = name !== "pending";
    history.hidden = name !== "history";
    if (name === "history") loadHistory(); else loadPending();
    history_replace(name);
  }

  function history_replace(name) { window.history.replaceState(null, "", name === "history" ? "#history" : location.pathname); }

  document.addEventListener("click", async (event) => {
    const tab = event.target.closest("[data-tab]");
    if (tab) { showTab(tab.dataset.tab); return; }
    if (event.target.id === "refresh") { showTab(history.hidden ? "pending" : "history"); return; }
    const trail = event.target.closest("[data-trail]");
    if (trail) { showTrail(trail); return; }
    const approveButton = event.target.closest("[data-approve]");
    if (approveButton) {
      const result = await approve(byId[approveButton.dataset.approve]);
      if (result) { loadPending(); refreshBadge(); }
      return;
    }
    const retryButton = event.target.closest("[data-retry]");
    if (retryButton) { retry(retryButton); return; }
    const reject = event.target.closest("[data-reject]");
    if (reject) {
      try {
        await decide(reject.dataset.reject, "reject");
        toast("已拒绝，不会执行", "info");
        loadPending();
        refreshBadge();
      } catch (error) { toast(error.message, "error"); }
    }
  });

  showTab(location.hash === "#history" ? "history" : "pending");
})();
