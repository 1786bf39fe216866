/* Plan drafter: profile (optionally from an account) -> POST /api/plans; edit the Markdown; save / share ->
   confirm dialog; the account's saved plans with their milestones, each marked done or late. */
"use strict";

(() => {
  const { api, esc, toast, busy, markdown, confirmAction } = Copilot;
  const form = document.getElementById("plan-form");
  const results = document.getElementById("plan-results");
  const people = document.getElementById("people");
  const rowTemplate = document.getElementById("person-row");
  let current = null; // {plan, markdown}
  let account = null; // {id, name}: the account the plan is for, when one is picked

  // A shared plan leaves internal knowledge out: the confirm dialog says so above the facts (as the
  // inbox does), and the facts do not repeat the raw left-out fields.
  async function confirmLeftOut(action, options) {
    const { left_out: _items, left_out_note: note, ...args } = action.arguments || {};
    if (note && !document.querySelector("#confirm-dialog .left-out-note")) {
      document.getElementById("confirm-facts").insertAdjacentHTML("beforebegin",
        `<div class="notice notice-warn left-out-note" role="note" id="confirm-left-out"><strong>注意：有内部内容未包含在发出的内容里</strong>${esc(note)}</div>`);
    }
    try {
      return await confirmAction(note ? { ...action, arguments: args } : action, options);
    } finally {
      document.getElementById("confirm-left-out")?.remove();
    }
  }

  function addPerson(side = "我方", title = "") {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.querySelector("[name=person_side]").value = side;
    const titleInput = row.querySelector("[name=person_title]");
    titleInput.value = title;
    titleInput.setAttribute("list", `titles-${side}`);
    Copilot.fillIcons(row);
    people.appendChild(row);
    return row;
  }

  function resetForm() {
    people.innerHTML = "";
    addPerson("我方", "客户成功经理");
    addPerson("客户方", "老板/总经理");
    document.getElementById("plan-date").value = new Date().toISOString().slice(0, 10);
  }

  function readCustomer() {
    const data = new FormData(form);
    const customer = { name: data.get("name").trim(), products: data.getAll("products"), key_people: [] };
    if (data.get("industry")) customer.industry = data.get("industry");
    if (data.get("tier")) customer.tier = data.get("tier");
    const fee = parseFloat(data.get("annual_fee"));
    if (!Number.isNaN(fee) && fee >= 0) customer.annual_fee = Math.round(fee * 10000);
    const extra = (data.get("goal_text") || "").split(/[,，、;；\n]/).map((g) => g.trim()).filter(Boolean);
    customer.goals = [...data.getAll("goals"), ...extra];
    if (data.get("signing_date")) customer.signing_date = data.get("signing_date");
    people.querySelectorAll(".person").forEach((row) => {
      const name = row.querySelector("[name=person_name]").value.trim();
      if (!name) return;
      customer.key_people.push({ name, title: row.querySelector("[name=person_title]").value.trim(),
        side: row.querySelector("[name=person_side]").value });
    });
    return customer;
  }

  function factsHtml(plan) {
    const c = plan.customer || {};
    const fact = (label, value, note = "") => `<div class="fact"><span>${label}</span><b>${esc(value)}</b>${note ? `<small>${esc(note)}</small>` : ""}</div>`;
    const facts = [fact("规模 · 服务方式", `${plan.tier} · ${plan.style}`, plan.cadence ? plan.cadence.review : "")];
    if (c.signing_date) facts.push(fact("签约日", c.signing_date));
    if (plan.first_value) facts.push(fact("首次价值", plan.first_value.date, `签约后 ${plan.first_value.days} 天`));
    const milestones = plan.milestones || [];
    if (milestones.length) facts.push(fact("价值里程碑", `${milestones.length} 个`, `最后一个 ${milestones[milestones.length - 1].date}`));
    if (plan.renewal) facts.push(fact("续费日", plan.renewal.date, plan.renewal.prepare_from ? `${plan.renewal.prepare_from} 起准备` : ""));
    return `<div class="facts">${facts.join("")}</div>`;
  }

  function render() {
    results.innerHTML = `<section class="card plan-card">
      <header class="plan-head">
        <div><span class="eyebrow">计划草稿</span>
          <p class="muted small">可以切到“编辑 Markdown”直接修改；保存或分享都要你确认后才执行。</p></div>
        <div class="seg" role="tablist" aria-label="查看方式">
          <button type="button" class="seg-btn active" data-view="preview" aria-selected="true">预览</button>
          <button type="button" class="seg-btn" data-view="edit" aria-selected="false">编辑 Markdown</button>
        </div>
      </header>
      ${factsHtml(current.plan)}
      <div class="markdown plan-preview" id="plan-preview">${markdown(current.markdown)}</div>
      <textarea class="input plan-editor" id="plan-editor" rows="24" spellcheck="false" hidden aria-label="计划 Markdown">${esc(current.markdown)}</textarea>
      <footer class="plan-foot">
        <button type="button" class="btn btn-ghost" id="plan-download">下载 .md</button>
        <span class="grow"></span>
        <button type="button" class="btn btn-secondary" id="plan-save" data-plan-action="save">保存</button>
        <span class="share-group">
          <input class="input" id="plan-recipient" placeholder="分享给（客户邮箱或姓名）" maxlength="200" aria-label="分享给">
          <button type="button" class="btn btn-primary" id="plan-share" data-plan-action="share">分享给客户</button>
        </span>
      </footer>
    </section>`;
  }

  // Account picker --------------------------------------------------------------------------------
  const accountQ = document.getElementById("plan-account-q");
  const accountOptions = document.getElementById("plan-account-options");
  const accountChosen = document.getElementById("plan-account");
  const saved = document.getElementById("plan-saved");
  const savedList = document.getElementById("plan-saved-list");
  let searchTimer = null;
  let searchSeq = 0;

  async function searchAccounts() {
    const q = accountQ.value.trim();
    const seq = ++searchSeq;
    if (!q) { accountOptions.hidden = true; accountOptions.innerHTML = ""; return; }
    try {
      const found = await api("GET", `/api/accounts?q=${encodeURIComponent(q)}&limit=8`);
      if (seq !== searchSeq) return; // a newer search is on its way
      accountOptions.innerHTML = found.items.length ? found.items.map((a) => `<button type="button" class="chip chip-suggest" role="option"
          data-account-id="${esc(a.id)}" data-account-name="${esc(a.name)}">${esc(a.name)}<small class="muted">${esc([a.city, a.tier].filter(Boolean).join(" · "))}</small></button>`).join("")
        : '<span class="muted small">没有找到匹配的客户</span>';
      accountOptions.hidden = false;
    } catch (error) {
      toast(error.message, "error", 6000);
    }
  }

  function setPeople(keyPeople) {
    people.innerHTML = "";
    if (!keyPeople.length) { addPerson("我方", "客户成功经理"); addPerson("客户方", "老板/总经理"); return; }
    keyPeople.forEach((p) => { const row = addPerson(p.side, p.title); row.querySelector("[name=person_name]").value = p.name; });
  }

  function fillProfile(profile) {
    form.elements.name.value = profile.name || "";
    const industry = form.elements.industry;
    if (profile.industry && ![...industry.options].some((o) => o.value === profile.industry)) industry.add(new Option(profile.industry, profile.industry));
    industry.value = profile.industry || "";
    form.elements.tier.value = profile.tier || "";
    form.elements.annual_fee.value = profile.annual_fee != null ? String(profile.annual_fee / 10000) : "";
    form.querySelectorAll("[name=products]").forEach((box) => { box.checked = (profile.products || []).includes(box.value); });
    if (profile.signing_date) form.elements.signing_date.value = profile.signing_date;
    setPeople(profile.key_people || []);
  }

  async function pickAccount(id, name) {
    try {
      fillProfile(await api("GET", `/api/accounts/${encodeURIComponent(id)}/plan-profile`));
    } catch (error) {
      toast(error.message, "error", 6000);
      return;
    }
    account = { id, name };
    document.getElementById("plan-account-name").textContent = name;
    accountChosen.hidden = false;
    accountOptions.hidden = true;
    accountQ.value = "";
    accountQ.hidden = true;
    loadSaved();
  }

  function clearAccount() {
    account = null;
    accountChosen.hidden = true;
    accountQ.hidden = false;
    saved.hidden = true;
    savedList.innerHTML = "";
  }

  accountQ.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchAccounts, 250); });
  accountQ.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); clearTimeout(searchTimer); searchAccounts(); } });
  accountOptions.addEventListener("click", (event) => {
    const option = event.target.closest("[data-account-id]");
    if (option) pickAccount(option.dataset.accountId, option.dataset.accountName);
  });
  document.getElementById("plan-account-clear").addEventListener("click", clearAccount);

  // Saved plans and milestone tracking ---------------------------------------------------------------
  const MILESTONE_STATE = { done: ["已完成", "badge-executed"], late: ["已延期", "badge-failed"], open: ["进行中", "badge-proposed"],
    overdue: ["逾期未完成", "badge-failed"] };

  function milestoneHtml(planId, m) {
    // An open milestone past its due date counts as late (the server says so in m.late).
    const state = m.status === "open" && m.late ? "overdue" : m.status;
    const [label, cls] = MILESTONE_STATE[state];
    const button = (status, text) => `<button type="button" class="btn btn-ghost btn-small" data-track="${status}" data-plan="${esc(planId)}"
      data-index="${m.index}"${m.status === status ? " disabled" : ""}>${text}</button>`;
    return `<li class="milestone" data-index="${m.index}">
      <span class="mono">${esc(m.due)}</span><span class="grow">${esc(m.title)}</span>
      <span class="choices"><span class="badge ${cls}">${label}</span>
      ${button("done", "完成")}${button("late", "延期")}${m.status !== "open" ? button("open", "重开") : ""}</span>
      ${m.note ? `<small class="muted">备注：${esc(m.note)}</small>` : ""}</li>`;
  }

  function savedPlanHtml(plan) {
    const p = plan.progress;
    return `<article class="history-row saved-plan" data-plan-id="${esc(plan.id)}">
      <div class="history-main"><div class="grow">
        <div class="history-title">${esc(plan.customer)} · 客户成功计划</div>
        <div class="history-outcome small muted">${esc(Copilot.formatTime(plan.created_at))} 由 ${esc(plan.created_by)} 保存</div>
      </div><span class="pill plan-progress">完成 ${p.done}/${p.total}${p.late ? ` · 延期 ${p.late}` : ""}</span></div>
      <ul class="trail">${plan.milestones.map((m) => milestoneHtml(plan.id, m)).join("")}</ul>
    </article>`;
  }

  async function loadSaved() {
    if (!account) return;
    const shownFor = account.id;
    try {
      const plans = await api("GET", `/api/accounts/${encodeURIComponent(account.id)}/plans`);
      if (!account || account.id !== shownFor) return;
      document.getElementById("plan-saved-title").textContent = `「${account.name}」已保存的计划（${plans.length}）`;
      savedList.innerHTML = plans.length ? plans.map(savedPlanHtml).join("")
        : '<p class="muted">这个客户还没有保存过计划：生成计划后点“保存”，确认后就会出现在这里。</p>';
      saved.hidden = false;
    } catch (error) {
      toast(error.message, "error", 6000);
    }
  }

  savedList.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-track]");
    if (!button) return;
    const { track: status, plan: planId, index } = button.dataset;
    busy(button, true, "…");
    try {
      const plan = await api("POST", `/api/plans/${encodeURIComponent(planId)}/milestones/${index}`, { status });
      button.closest(".saved-plan").outerHTML = savedPlanHtml(plan);
      toast(`里程碑已标记为「${MILESTONE_STATE[status][0]}」`, "success");
    } catch (error) {
      busy(button, false);
      toast(error.message, "error", 6000);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const customer = readCustomer();
    if (!customer.name) { toast("请填写客户名称", "error"); return; }
    if (!customer.tier && customer.annual_fee === undefined) { toast("请选择客户规模，或填写年费", "error"); form.querySelector("[name=tier]").focus(); return; }
    const button = document.getElementById("plan-draft");
    busy(button, true, "生成中…");
    try {
      current = await api("POST", "/api/plans", account ? { customer, account_id: account.id } : { customer });
      render();
      results.scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (error) {
      results.innerHTML = `<div class="notice notice-error"><strong>没有生成计划</strong>${esc(error.message)}</div>`;
    } finally {
      busy(button, false);
    }
  });

  form.addEventListener("reset", () => setTimeout(() => { resetForm(); clearAccount(); }, 0));
  document.getElementById("add-person").addEventListener("click", () => addPerson("客户方").querySelector("input").focus());
  people.addEventListener("click", (event) => { if (event.target.closest("[data-remove]")) event.target.closest(".person").remove(); });
  people.addEventListener("change", (event) => {
    if (event.target.name === "person_side") event.target.closest(".person").querySelector("[name=person_title]").setAttribute("list", `titles-${event.target.value}`);
  });

  results.addEventListener("input", (event) => {
    if (event.target.id !== "plan-editor") return;
    current.markdown = event.target.value;
    current.edited = true;
    document.getElementById("plan-preview").innerHTML = markdown(current.markdown);
  });

  results.addEventListener("click", async (event) => {
    const view = event.target.closest("[data-view]");
    if (view) {
      results.querySelectorAll("[data-view]").forEach((b) => { b.classList.toggle("active", b === view); b.setAttribute("aria-selected", String(b === view)); });
      const edit = view.dataset.view === "edit";
      document.getElementById("plan-editor").hidden = !edit;
      document.getElementById("plan-preview").hidden = edit;
      if (edit) document.getElementById("plan-editor").focus();
      return;
    }
    if (event.target.id === "plan-download") {
      const blob = new Blob([current.markdown], { type: "text/markdown;charset=utf-8" });
      const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob),
        download: `${(current.plan.customer && current.plan.customer.name) || "plan"}-客户成功计划.md` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      return;
    }
    const button = event.target.closest("[data-plan-action]");
    if (!button) return;
    const action = button.dataset.planAction;
    const body = { plan: current.plan, action };
    if (current.edited) body.markdown = current.markdown;
    if (action === "share") {
      const recipient = document.getElementById("plan-recipient").value.trim();
      if (!recipient) { toast("请先填写分享给谁", "error"); document.getElementById("plan-recipient").focus(); return; }
      body.recipient = recipient;
    }
    busy(button, true, "准备中…");
    try {
      const proposed = await api("POST", "/api/plans/actions", body);
      const shown = proposed.action.arguments && proposed.action.arguments.markdown;
      const decided = await confirmLeftOut(proposed.action, { markdownText: shown || current.markdown,
        confirmLabel: action === "share" ? "确认分享" : "确认保存" });
      if (decided && decided.status === "executed" && action === "save" && account) {
        await loadSaved();
        saved.scrollIntoView({ behavior: "smooth", block: "start" });
      }
    } catch (error) {
      toast(error.message, "error", 6000);
    } finally {
      busy(button, false);
    }
  });

  resetForm();
})();
