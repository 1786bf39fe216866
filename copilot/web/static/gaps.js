/* Knowledge gaps: what the copilot could not answer, was unsure about, or got thumbs down for. */
"use strict";

(() => {
  const { api, esc } = Copilot;
  const select = document.getElementById("gap-days");
  const stats = document.getElementById("gap-stats");
  const lists = document.getElementById("gap-lists");

  const retry = (q, role = "support") =>
    `<a class="btn btn-ghost btn-small" href="/assistant?role=${role}&q=${encodeURIComponent(q)}">再问一次</a>` +
    `<button type="button" class="btn btn-ghost btn-small promote" data-q="${esc(q)}" data-role="${role}">加入评测集</button>`;

  // One click turns a real frontline question into an eval case (admin keys only).
  lists.addEventListener("click", async (event) => {
    const button = event.target.closest("button.promote");
    if (!button) return;
    button.disabled = true;
    try {
      await api("POST", "/api/evals/promote", { question: button.dataset.q, role: button.dataset.role });
      button.textContent = "已加入评测集";
    } catch (error) {
      button.disabled = false;
      button.textContent = `加入失败：${error.message}`;
    }
  });

  function column(title, hint, tone, items, row) {
    return `<section class="card gap-card gap-${tone}">
      <header><h2>${title}</h2><span class="count-pill">${items.length}</span></header>
      <p class="muted small">${hint}</p>
      ${items.length ? `<ul class="gap-list">${items.map(row).join("")}</ul>` : '<p class="empty-line">这段时间没有，很好。</p>'}
    </section>`;
  }

  async function load() {
    lists.classList.add("loading");
    try {
      const data = await api("GET", `/api/gaps?days=${select.value}`);
      const unanswered = data.unanswered.reduce((n, x) => n + x.count, 0);
      const shaky = data.low_confidence.reduce((n, x) => n + x.count, 0);
      const rate = data.asked ? Math.round(((data.asked - unanswered) / data.asked) * 100) : null;
      const stat = (label, value, tone = "") => `<div class="stat ${tone}"><span>${label}</span><b>${value}</b></div>`;
      stats.innerHTML = stat("提问总数", data.asked) + stat("有依据作答", rate === null ? "—" : `${rate}%`, "good") +
        stat("未能回答", unanswered, unanswered ? "bad" : "") + stat("没把握", shaky, shaky ? "warn" : "") +
        stat("被点踩", data.thumbs_down.length, data.thumbs_down.length ? "bad" : "");
      const counted = (x) => `<li><div class="grow"><div class="gap-q">${esc(x.question)}</div><span class="muted small">问过 ${x.count} 次</span></div>${retry(x.question, x.role)}</li>`;
      lists.innerHTML =
        column("未能回答", "知识库里找不到可靠依据，助手按规则没有作答。最该补的知识。", "bad", data.unanswered, counted) +
        column("没把握", "答了，但依据的相关度偏低。值得检查答案是否准确。", "warn", data.low_confidence, counted) +
        column("被点踩", "一线同事认为答得不好，附带他们的意见。", "down", data.thumbs_down, (x) => (
          `<li><div class="grow"><div class="gap-q">${esc(x.question)}</div>${x.comment ? `<div class="gap-comment">“${esc(x.comment)}”</div>` : '<span class="muted small">没有留言</span>'}</div>${retry(x.question, x.role)}</li>`));
    } catch (error) {
      lists.innerHTML = `<div class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</div>`;
    } finally {
      lists.classList.remove("loading");
    }
  }

  select.addEventListener("change", load);
  load();
})();
