/* My accounts: a CSM's book by renewal risk, what changed, and an account's insight with its next
   best actions; choosing one proposes a task that a person confirms in the actions inbox. */
"use strict";

(() => {
  const { api, esc, toast, busy, refreshBadge } = Copilot;
  const $ = (id) => document.getElementById(id);
  const OWNER_KEY = "copilot.accounts.owner";
  const PAGE_SIZE = 50;
  const TONES = { 高: "high", 中: "medium", 低: "low" };
  const state = { owner: localStorage.getItem(OWNER_KEY) || "", risk: "", offset: 0 };
  const rows = $("acct-rows");
  const dialog = $("acct-dialog");
  let loads = 0; // only the newest list request may render

  const pct = (x) => `${Math.round(x * 100)}%`;
  const riskBadge = (level, probability) =>
    `<span class="badge risk-${TONES[level] || "low"}">风险${esc(level)}${probability === undefined ? "" : ` ${pct(probability)}`}</span>`;
  // "续费风险高：活跃门店 20→8，…" -> the reason after the level, which the badge already shows.
  const reason = (summary) => { const i = summary.indexOf("："); return i >= 0 ? summary.slice(i + 1) : summary; };

  function renewal(dateText) {
    if (!dateText) return '<span class="muted">未知</span>';
    const days = Math.round((new Date(`${dateText}T00:00:00`) - new Date(new Date().toDateString())) / 86400000);
    const when = days >= 0 ? `${days} 天后` : `已过 ${-days} 天`;
    return `<span class="nowrap">${esc(dateText)}</span><span class="muted small">${when}</span>`;
  }

  function changesHtml(changes, limit) {
    if (!changes.length) return '<span class="muted small">无明显变化</span>';
    const shown = changes.slice(0, limit).map((c) =>
      `<span class="acct-change ${c.worse ? "is-worse" : "is-better"}">${esc(c.text)}</span>`);
    if (changes.length > limit) shown.push(`<span class="muted small">等 ${changes.length} 项</span>`);
    return shown.join("");
  }

  function rowHtml(a) {
    const meta = [a.tier, a.industry, a.city, a.csm && `CSM ${a.csm}`].filter(Boolean).map(esc).join(" · ");
    const health = a.health === null ? "—" : Math.round(a.health);
    return `<tr class="acct-row" data-id="${esc(a.id)}" data-risk="${a.risk}" tabindex="0">
      <td><div class="acct-name">${esc(a.name)}</div><div class="muted small">${meta}</div></td>
      <td><div class="acct-risk">${riskBadge(a.risk_level, a.risk)}<span class="acct-reason">${esc(reason(a.risk_summary))}</span></div></td>
      <td><div class="acct-health"><b>${health}</b><span class="acct-bar"><i style="width:${a.health === null ? 0 : Math.round(a.health)}%"></i></span></div></td>
      <td><div class="acct-renewal">${renewal(a.renews_on)}</div></td>
      <td><div class="acct-changes" title="${esc(a.changes_period)}">${changesHtml(a.changes, 3)}</div></td>
    </tr>`;
  }

  async function loadOwners() {
    const select = $("acct-owner");
    try {
      const owners = await api("GET", "/api/accounts/owners");
      select.innerHTML = '<option value="">全部客户</option>' + owners.map((o) =>
        `<option value="${esc(o.name)}">${esc(o.name)}（${o.accounts} 个，高风险 ${o.high_risk}）</option>`).join("");
      if (!owners.some((o) => o.name === state.owner)) state.owner = "";
      select.value = state.owner;
      const all = owners.reduce((n, o) => ({ accounts: n.accounts + o.accounts, high: n.high + o.high_risk }), { accounts: 0, high: 0 });
      $("acct-summary").textContent = owners.length ? `全部 ${all.accounts} 个客户，高风险 ${all.high} 个` : "";
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async function load(append = false) {
    const mine = ++loads;
    const params = new URLSearchParams({ sort: "risk", limit: PAGE_SIZE, offset: state.offset });
    if (state.owner) params.set("owner", state.owner);
    if (state.risk) params.set("risk", state.risk);
    rows.classList.add("loading");
    try {
      const data = await api("GET", `/api/accounts?${params}`);
      if (mine !== loads) return;
      const html = data.items.map(rowHtml).join("");
      if (append) rows.insertAdjacentHTML("beforeend", html);
      else rows.innerHTML = html || `<tr><td colspan="5"><div class="empty-state"><p>${
        state.owner || state.risk ? "没有符合条件的客户。" : "还没有导入客户。在「知识库」上传客户表和活动表（或用 copilot ingest）后，这里会按续费风险列出客户。"}</p></div></td></tr>`;
      const shown = Math.min(state.offset + data.items.length, data.total);
      $("acct-total").textContent = data.total;
      const period = data.items.map((x) => x.changes_period).find(Boolean);
      $("acct-period").textContent = period ? ` · 最近变化：${period}` : "";
      $("acct-shown").textContent = `已显示 ${shown} / ${data.total}`;
      $("acct-pager").hidden = shown >= data.total;
    } catch (error) {
      if (mine === loads) rows.innerHTML = `<tr><td colspan="5"><div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div></td></tr>`;
    } finally {
      if (mine === loads) rows.classList.remove("loading");
    }
  }

  // Detail ------------------------------------------------------------------------------------
  function driversHtml(risk) {
    const top = Math.max(...risk.drivers.map((d) => Math.abs(d.contribution)), 0.01);
    return `<ul class="acct-drivers">${risk.drivers.map((d) => `<li>
        <span class="grow">${esc(d.reason)}</span>
        <span class="acct-push ${d.contribution > 0 ? "is-worse" : "is-better"}">${d.contribution > 0 ? "推高风险" : d.contribution < 0 ? "降低风险" : "无影响"}</span>
        <span class="acct-bar"><i style="width:${Math.round((Math.abs(d.contribution) / top) * 100)}%"></i></span>
      </li>`).join("")}</ul>`;
  }

  function healthHtml(score, title, kind) {
    if (score.score === null) return `<p class="muted small">${title}：${esc(score.note || "没有可用的数据")}</p>`;
    return `<div class="acct-score"><span>${title}</span><b>${Math.round(score.score)}</b></div>
      <ul class="acct-parts" data-health="${kind}">${score.parts.map((p) => `<li>
        <span class="acct-part-label">${esc(p.label)}</span><span class="grow muted small">${esc(p.note)}</span>
        <span class="nowrap small">${p.points.toFixed(1)} / ${Math.round(p.weight * 100)}</span></li>`).join("")}</ul>
      ${score.note ? `<p class="muted small">${esc(score.note)}</p>` : ""}`;
  }

  function actionsHtml(accountId, actions) {
    if (!actions.length) return '<p class="muted small">知识库里没有适合这个阶段的打法。</p>';
    return `<ol class="acct-actions">${actions.map((a) => `<li class="acct-action">
        <h4>${esc(a.title)}</h4>
        <p class="small">${esc(a.why)}</p>
        ${a.uplift > 0 ? "" : '<p class="small muted">按模型，这一步在续费前不会提高续费概率，可作为后续动作。</p>'}
        ${a.step ? `<p class="small"><span class="label">第一步</span>${esc(a.step)}</p>` : ""}
        <p class="small muted">来源打法：<a href="/knowledge?kind=playbook&q=${encodeURIComponent(a.playbook_id)}" target="_blank" rel="noopener">${esc(a.title)}（${esc(a.playbook_id)}）</a></p>
        <div class="acct-action-foot">
          <button type="button" class="btn btn-secondary btn-small" data-propose="${esc(a.playbook_id)}" data-account="${esc(accountId)}">提交为待确认任务</button>
          <span class="acct-proposed small" aria-live="polite"></span>
        </div>
      </li>`).join("")}</ol>`;
  }

  function detailHtml(d) {
    const i = d.insight;
    const risk = i.renewal_risk;
    return `<section class="acct-section"><h3>续费风险</h3>
        <div class="acct-risk">${riskBadge(risk.level, risk.probability)}<span class="acct-reason">${esc(reason(risk.summary))}</span></div>
        ${risk.drivers.length ? driversHtml(risk) : ""}</section>
      <section class="acct-section"><h3>健康度</h3>${healthHtml(i.health.broad, "广义健康度", "broad")}${healthHtml(i.health.narrow, "狭义健康度", "narrow")}</section>
      <section class="acct-section"><h3>客户旅程</h3><p>当前阶段：<b class="acct-journey">${esc(i.journey_label)}</b></p></section>
      <section class="acct-section"><h3>最近变化 <span class="muted small">${esc(d.changes_period)}</span></h3>
        <div class="acct-changes">${changesHtml(d.changes, 10)}</div></section>
      <section class="acct-section"><h3>下一步最佳行动</h3>
        <p class="muted small">按模型里续费概率的提升排序；提交后出现在「待确认」里，有人确认才会执行。</p>
        ${actionsHtml(d.account.id, i.next_best_actions)}</section>`;
  }

  async function open(id) {
    const detail = $("acct-detail");
    detail.innerHTML = '<p class="muted">加载中…</p>';
    $("acct-name").textContent = "";
    $("acct-tags").innerHTML = "";
    $("acct-meta").textContent = "";
    if (!dialog.open) dialog.showModal();
    try {
      const d = await api("GET", `/api/accounts/${encodeURIComponent(id)}`);
      const a = d.account;
      $("acct-name").textContent = a.name;
      $("acct-tags").innerHTML = [a.tier, a.industry, a.city].filter(Boolean).map((t) => `<span class="badge">${esc(t)}</span>`).join("")
        + (a.sample ? '<span class="badge">示例数据</span>' : "");
      $("acct-meta").textContent = [a.csm && `客户成功经理 ${a.csm}`, a.sales && `销售 ${a.sales}`,
        a.renews_on && `续费日期 ${a.renews_on}`].filter(Boolean).join(" · ");
      detail.innerHTML = detailHtml(d);
    } catch (error) {
      detail.innerHTML = `<div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div>`;
    }
  }

  async function propose(button) {
    const note = button.parentElement.querySelector(".acct-proposed");
    busy(button, true, "提交中…");
    try {
      const action = await api("POST", `/api/accounts/${encodeURIComponent(button.dataset.account)}/actions`,
        { playbook_id: button.dataset.propose });
      busy(button, false);
      button.disabled = true;
      button.textContent = "已提交";
      note.innerHTML = `等待确认：<a href="/actions">去「待确认」确认</a>`;
      note.dataset.action = action.id;
      toast("已提交为待确认任务，确认后才会执行", "success");
      refreshBadge();
    } catch (error) {
      busy(button, false);
      note.innerHTML = `<span class="error-text">${esc(error.message)}</span>`;
    }
  }

  // Events ------------------------------------------------------------------------------------
  $("acct-owner").addEventListener("change", (event) => {
    state.owner = event.target.value;
    state.offset = 0;
    if (state.owner) localStorage.setItem(OWNER_KEY, state.owner); else localStorage.removeItem(OWNER_KEY);
    load();
  });
  $("acct-risk").addEventListener("change", (event) => { state.risk = event.target.value; state.offset = 0; load(); });
  $("acct-more").addEventListener("click", () => { state.offset += PAGE_SIZE; load(true); });
  rows.addEventListener("click", (event) => {
    const row = event.target.closest(".acct-row");
    if (row) open(row.dataset.id);
  });
  rows.addEventListener("keydown", (event) => {
    const row = event.target.closest(".acct-row");
    if (row && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); open(row.dataset.id); }
  });
  dialog.addEventListener("click", (event) => {
    const button = event.target.closest("[data-propose]");
    if (button) propose(button);
    else if (event.target === dialog || event.target.closest("#acct-close")) dialog.close();
  });

  loadOwners().then(() => load());
})();
