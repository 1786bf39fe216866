/* Navigation map: journey stage × role from GET /api/map; every item links into the assistant. */
"use strict";

(() => {
  const { api, esc } = Copilot;
  const grid = document.getElementById("map-grid");
  const KINDS = [["playbooks", "打法", "playbook", 2], ["cases", "案例", "case", 2], ["faqs", "FAQ", "faq", 2]];

  function link(item, kind) {
    return `<li><a class="map-link kind-${kind}" href="${esc(item.href)}" title="${esc(item.note)}">${esc(item.title)}</a></li>`;
  }

  function cell(c, stage, role) {
    if (!c.total) return `<div class="map-cell empty" data-stage="${esc(stage)}" data-role="${esc(role.key)}"><div class="cell-label">${esc(stage)} · ${esc(role.label)}</div><span class="muted small">暂无内容</span></div>`;
    const counts = KINDS.filter(([key]) => c[key].count).map(([key, label, kind]) => `<span class="count-pill kind-${kind}">${label} ${c[key].count}</span>`).join("");
    const shown = [];
    const rest = [];
    for (const [key, , kind, n] of KINDS) {
      const all = [...c[key].top, ...c[key].more];
      all.slice(0, n).forEach((item) => shown.push(link(item, kind)));
      all.slice(n).forEach((item) => rest.push(link(item, kind)));
    }
    return `<div class="map-cell" data-stage="${esc(stage)}" data-role="${esc(role.key)}">
      <div class="cell-label">${esc(stage)} · ${esc(role.label)}</div>
      <div class="cell-counts">${counts}</div>
      <ul class="cell-items">${shown.join("")}</ul>
      ${rest.length ? `<details class="cell-more"><summary>还有 ${rest.length} 条</summary><ul class="cell-items">${rest.join("")}</ul></details>` : ""}
    </div>`;
  }

  async function load() {
    try {
      const data = await api("GET", "/api/map");
      const cells = Object.fromEntries(data.cells.map((c) => [`${c.role}|${c.stage}`, c]));
      const html = data.roles.map((role) => `<div class="map-role"><strong>${esc(role.label)}</strong><small>${esc(role.hint)}</small>
        <a class="small" href="/assistant?role=${esc(role.key)}">打开${esc(role.label)}助手 →</a></div>` +
        data.stages.map((stage) => cell(cells[`${role.key}|${stage}`], stage, role)).join("")).join("");
      document.getElementById("map-loading").remove();
      grid.insertAdjacentHTML("beforeend", html);
    } catch (error) {
      document.getElementById("map-loading").innerHTML = `<div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div>`;
    }
  }

  load();
})();
