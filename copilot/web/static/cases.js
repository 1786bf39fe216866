/* Case finder: profile from pick lists -> POST /api/cases/search; one-pager -> confirm dialog. */
"use strict";

(() => {
  const { api, esc, toast, busy, confirmAction } = Copilot;
  const form = document.getElementById("case-form");
  const results = document.getElementById("case-results");
  const FACETS = { industry: "行业", location: "地域", tier: "规模", situation: "情境", semantic: "描述" };
  let lastProfile = null;

  function readProfile() {
    const data = new FormData(form);
    const profile = {};
    for (const key of ["industry", "city", "tier"]) if (data.get(key)) profile[key] = data.get(key);
    const fee = parseFloat(data.get("annual_fee"));
    if (!Number.isNaN(fee) && fee >= 0) profile.annual_fee = Math.round(fee * 10000);
    const situation = data.getAll("situation");
    if (situation.length) profile.situation = situation;
    return profile;
  }

  function num(x) { return Number.isInteger(x) ? String(x) : String(Math.round(x * 10) / 10); }
  function wan(fee) { return fee >= 10000 ? `${num(fee / 10000)} 万` : `${fee} 元`; }

  function metricHtml(r) {
    const after = `${num(r.after)}${esc(r.unit)}`;
    if (r.before === null || r.before === undefined) {
      return `<div class="metric"><span class="metric-name">${esc(r.metric)}</span><span class="metric-values"><b>${after}</b></span></div>`;
    }
    const up = r.after >= r.before;
    const delta = r.unit === "%" ? `${up ? "+" : ""}${num(r.after - r.before)} 个百分点`
      : r.before ? `${up ? "+" : ""}${num(((r.after - r.before) / r.before) * 100)}%` : "";
    return `<div class="metric"><span class="metric-name">${esc(r.metric)}</span>
      <span class="metric-values">${num(r.before)}${esc(r.unit)} <span class="arrow">→</span> <b>${after}</b></span>
      ${delta ? `<span class="delta ${up ? "up" : "down"}">${delta}</span>` : ""}</div>`;
  }

  function breakdownHtml(match, weights) {
    return Object.keys(FACETS).filter((f) => weights[f]).map((f) => {
      const contribution = match.breakdown[f] || 0;
      const fit = Math.max(0, Math.min(1, contribution / weights[f]));
      return `<div class="bar-row" title="${FACETS[f]}：权重 ${Math.round(weights[f] * 100)}%，贡献 ${num(contribution * 100)} 分">
        <span class="bar-label">${FACETS[f]}</span><span class="bar"><i style="width:${Math.round(fit * 100)}%"></i></span>
        <span class="bar-value">+${num(contribution * 100)}</span></div>`;
    }).join("");
  }

  // An internal case informs the seller but never goes to a customer: no one-pager for it.
  function onepagerButton(c, internal) {
    if (internal) return `<span class="tag tag-soft" title="仅限内部参考，不能做成一页纸发给客户">仅限内部</span>`;
    return `<button type="button" class="btn btn-primary btn-small" data-onepager="${esc(c.id)}">生成一页纸</button>`;
  }

  function cardHtml(match, weights, rank, internal) {
    const c = match.case;
    const score = Math.round(match.score * 100);
    return `<article class="card case-card${match.good_match ? "" : " alt"}" data-case="${esc(c.id)}">
      <header class="case-head">
        <div class="case-rank">${rank}</div>
        <div class="case-title">
          <h3>${esc(c.company)}</h3>
          <div class="tags"><span class="tag">${esc(c.industry)}</span><span class="tag">${esc(c.province)}·${esc(c.city)}</span>
            <span class="tag">${esc(c.tier)} · 年费 ${wan(c.annual_fee)}</span>${c.situation.map((s) => `<span class="tag tag-soft">${esc(s)}</span>`).join("")}</div>
        </div>
        <div class="score ${match.good_match ? "good" : "weak"}" title="综合匹配度"><b>${score}</b><small>${match.good_match ? "匹配度" : "备选"}</small></div>
      </header>
      ${match.why.length ? `<div class="why"><span class="label">为什么匹配</span>${match.why.map((w) => `<span class="chip chip-why">✓ ${esc(w)}</span>`).join("")}</div>` : ""}
      <p class="case-summary">${esc(c.summary)}</p>
      <div class="case-body">
        <div class="metrics">${c.results.map(metricHtml).join("")}</div>
        <div class="breakdown" aria-label="得分构成">${breakdownHtml(match, weights)}</div>
      </div>
      <footer class="case-foot">
        <span class="muted small">产品：${c.products.map(esc).join("、")}${c.time_to_first_value_days ? ` · 首次见到价值 ${c.time_to_first_value_days} 天` : ""}</span>
        <span class="case-actions">
          <a class="btn btn-ghost btn-small" href="/assistant?role=sales&q=${encodeURIComponent(`${c.company}是怎么做的？效果如何？`)}">问助手</a>
          ${onepagerButton(c, internal)}
        </span>
      </footer>
    </article>`;
  }

  function estimateHtml(estimate) {
    if (!estimate) return "";
    const rows = (estimate.metrics || []).map((m) => {
      const levels = m.typical_before !== null && m.typical_before !== undefined
        ? `${num(m.typical_before)}${esc(m.unit)} → <b>${num(m.typical_after)}${esc(m.unit)}</b>` : `<b>${num(m.typical_after)}${esc(m.unit)}</b>`;
      const change = m.change_pct !== null && m.change_pct !== undefined ? `<span class="delta ${m.change_pct >= 0 ? "up" : "down"}">${m.change_pct >= 0 ? "+" : ""}${num(m.change_pct)}%</span>` : "";
      return `<div class="metric"><span class="metric-name">${esc(m.metric)}<small>${(m.based_on || []).length} 个同行案例</small></span>
        <span class="metric-values">${levels}</span>${change}</div>`;
    }).join("");
    return `<section class="card estimate">
      <div class="estimate-head"><span class="estimate-icon" aria-hidden="true">${Copilot.icon("trend")}</span><h2>价值测算</h2>
        ${estimate.time_to_first_value_days ? `<span class="pill">首次价值约 ${num(estimate.time_to_first_value_days)} 天</span>` : ""}</div>
      <p>${esc(estimate.summary)}</p>
      ${rows ? `<div class="metrics">${rows}</div>` : ""}
      <details><summary>怎么算的</summary><p class="muted small">${esc(estimate.method)}</p></details>
    </section>`;
  }

  function render(data) {
    const weights = data.weights || Object.fromEntries(Object.keys(FACETS).map((f) => [f, 1]));
    const head = `<div class="results-head"><p class="note${data.good_matches ? "" : " note-warn"}">${esc(data.note)}</p></div>`;
    if (!data.matches.length) { results.innerHTML = head; return; }
    const internal = new Set(data.internal_cases || []);
    results.innerHTML = head + estimateHtml(data.value_estimate) +
      data.matches.map((m, i) => cardHtml(m, weights, i + 1, internal.has(m.case.id))).join("");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const profile = readProfile();
    const query = form.querySelector("[name=query]").value.trim();
    if (!Object.keys(profile).length && !query) { toast("请至少选一个条件：行业、城市、规模、情境，或写一句描述", "error"); return; }
    const body = { k: 5 };
    if (query) body.query = query;
    if (Object.keys(profile).length) body.profile = profile;
    lastProfile = profile;
    const button = document.getElementById("case-search");
    busy(button, true, "查找中…");
    results.classList.add("loading");
    try {
      render(await api("POST", "/api/cases/search", body));
    } catch (error) {
      results.innerHTML = `<div class="notice notice-error"><strong>没有查到</strong>${esc(error.message)}</div>`;
    } finally {
      busy(button, false);
      results.classList.remove("loading");
    }
  });

  form.addEventListener("reset", () => setTimeout(() => form.querySelector("select").focus(), 0));

  results.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-onepager]");
    if (!button) return;
    busy(button, true, "生成中…");
    try {
      const body = { case_id: button.dataset.onepager };
      if (lastProfile && Object.keys(lastProfile).length) body.prospect = lastProfile;
      const draft = await api("POST", "/api/cases/onepager", body);
      await confirmAction(draft.action, { markdownText: draft.markdown, confirmLabel: "确认发送" });
    } catch (error) {
      toast(error.message, "error", 6000);
    } finally {
      busy(button, false);
    }
  });
})();
