/* Knowledge base: import sheets and documents, export sheets, browse items, propose edits and retirements. */
"use strict";

(() => {
  const { api, esc, toast, busy, headers, errorFrom, refreshBadge } = Copilot;
  const $ = (id) => document.getElementById(id);
  const KINDS = { faq: "FAQ", case: "案例", playbook: "打法" };
  const AUDIENCES = { public: "公开", internal: "内部" };
  const ROLES = { sales: "销售", csm: "客户成功", support: "客服" };
  const PAGE_SIZE = 50;
  const params = new URLSearchParams(location.search);
  const state = { kind: params.get("kind") || "", q: params.get("q") || "", audience: params.get("audience") || "",
    status: params.get("status") || "", offset: 0 };
  const dialog = $("kb-dialog");
  let current = null; // the item open in the dialog
  let loads = 0; // only the newest list request may render

  /** fetch with the page's API key; throws an Error fit to show, like Copilot.api. */
  async function send(url, options = {}) {
    let response;
    try {
      response = await fetch(url, { ...options, headers: headers(false) });
    } catch (_) {
      throw new Error("连不上服务器，请检查网络后重试");
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  // Import ------------------------------------------------------------------------------------
  const drop = $("kb-drop");
  const result = $("kb-import-result");

  const count = (label, n, tone) => `<span class="kb-count${n ? ` kb-count-${tone}` : ""}">${label} <b>${n}</b></span>`;

  function sheetHtml(sheet) {
    const errors = sheet.errors.length ? `<p class="small kb-errors-head">${sheet.errors.length} 行有问题，没有导入：</p>
      <ul class="kb-lines kb-errors">${sheet.errors.map((e) => `<li>${esc(e)}</li>`).join("")}</ul>` : "";
    const notes = sheet.notes.length ? `<ul class="kb-lines kb-notes">${sheet.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : "";
    return `<article class="kb-sheet">
      <header><span class="badge kind-${esc(sheet.kind)}">${esc(KINDS[sheet.kind] || sheet.kind)}</span><b class="grow">${esc(sheet.source)}</b></header>
      <div class="kb-counts">${count("新增", sheet.added, "added")}${count("更新", sheet.updated, "updated")}${count("未变", sheet.unchanged, "same")}${count("删除", sheet.removed, "removed")}</div>
      ${errors}${notes}
    </article>`;
  }

  function reportHtml(name, report) {
    const parts = report.sheets.map(sheetHtml);
    const docs = [["新增", report.documents_added], ["更新", report.documents_updated]].filter(([, list]) => list.length);
    if (docs.length) parts.push(`<p class="kb-docs">文档：${docs.map(([label, list]) => `${label} ${list.map(esc).join("、")}`).join("；")}</p>`);
    if (report.failed.length) {
      parts.push(`<div class="notice notice-error"><strong>没能导入</strong><ul class="kb-lines">${report.failed.map((f) => `<li>${esc(f)}</li>`).join("")}</ul></div>`);
    }
    if (!parts.length) parts.push(`<div class="notice notice-warn"><strong>没有导入任何内容</strong>${esc(name)} 里没有找到可导入的知识。</div>`);
    return parts.join("");
  }

  async function upload(file) {
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    drop.classList.add("loading");
    result.innerHTML = `<p class="muted small">正在导入 ${esc(file.name)}…</p>`;
    try {
      const report = await (await send("/api/knowledge/import", { method: "POST", body: form })).json();
      result.innerHTML = reportHtml(file.name, report);
      state.offset = 0;
      load();
      loadSources();
    } catch (error) {
      result.innerHTML = `<div class="notice notice-error"><strong>导入失败</strong>${esc(error.message)}</div>`;
    } finally {
      drop.classList.remove("loading");
      $("kb-file").value = "";
    }
  }

  $("kb-file").addEventListener("change", (event) => upload(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("is-over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("is-over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("is-over");
    upload(event.dataTransfer.files[0]);
  });

  // Export ------------------------------------------------------------------------------------
  // Fetched rather than linked so the API key travels in the header, then saved from a blob.
  async function download(button) {
    const { export: kind, template } = button.dataset;
    busy(button, true, "准备中…");
    try {
      const url = `/api/knowledge/export?kind=${kind}&format=xlsx&template=${template === "true"}`;
      const blob = await (await send(url)).blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${KINDS[kind]}${template === "true" ? "-空白模板" : ""}.xlsx`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 30000);
    } catch (error) {
      toast(`导出失败：${error.message}`, "error", 6000);
    } finally {
      busy(button, false);
    }
  }

  document.querySelectorAll("[data-export]").forEach((button) => button.addEventListener("click", () => download(button)));

  // List --------------------------------------------------------------------------------------
  const list = $("kb-list");
  const fileName = (source) => String(source || "").split(/[\\/]/).pop();

  function statusBadges(item) {
    return (item.edited ? '<span class="badge badge-edited">已修改</span>' : "") +
      (item.status === "retired" ? '<span class="badge badge-retired">已下架</span>' : "");
  }

  function rowHtml(item) {
    return `<li><button type="button" class="kb-row${item.status === "retired" ? " is-retired" : ""}" data-id="${esc(item.id)}">
      <span class="badge kind-${esc(item.kind)}">${esc(KINDS[item.kind] || item.kind)}</span>
      <span class="grow"><span class="kb-row-title">${esc(item.title)}</span>
        <span class="kb-row-meta muted small">${esc(AUDIENCES[item.audience] || item.audience)} · ${esc(fileName(item.source))}</span></span>
      <span class="kb-row-badges">${statusBadges(item)}</span>
    </button></li>`;
  }

  function syncControls() {
    document.querySelectorAll("#kb-kind [data-kind]").forEach((b) => {
      b.classList.toggle("active", b.dataset.kind === state.kind);
      b.setAttribute("aria-pressed", String(b.dataset.kind === state.kind));
    });
    $("kb-q").value = state.q;
    $("kb-audience").value = state.audience;
    $("kb-status").value = state.status;
  }

  function query() {
    const q = new URLSearchParams();
    for (const key of ["kind", "q", "audience", "status"]) if (state[key]) q.set(key, state[key]);
    return q;
  }

  async function load() {
    const mine = ++loads;
    const filters = query();
    history.replaceState(null, "", filters.toString() ? `?${filters}` : location.pathname);
    filters.set("limit", PAGE_SIZE);
    filters.set("offset", state.offset);
    list.classList.add("loading");
    try {
      const page = await api("GET", `/api/knowledge/items?${filters}`);
      if (mine !== loads) return;
      $("kb-total").textContent = `共 ${page.total} 条`;
      list.innerHTML = page.items.length ? page.items.map(rowHtml).join("")
        : '<li class="empty-line">没有符合条件的知识。换个关键词或筛选条件试试。</li>';
      const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
      const at = Math.floor(state.offset / PAGE_SIZE) + 1;
      $("kb-pager").hidden = pages <= 1;
      $("kb-page").textContent = `第 ${at} / ${pages} 页`;
      $("kb-prev").disabled = at <= 1;
      $("kb-next").disabled = at >= pages;
    } catch (error) {
      if (mine !== loads) return;
      list.innerHTML = `<li class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</li>`;
    } finally {
      if (mine === loads) list.classList.remove("loading");
    }
  }

  function refilter(change) {
    Object.assign(state, { q: $("kb-q").value.trim() }, change, { offset: 0 });
    syncControls();
    load();
  }

  $("kb-kind").addEventListener("click", (event) => {
    const button = event.target.closest("[data-kind]");
    if (button) refilter({ kind: button.dataset.kind });
  });
  $("kb-filters").addEventListener("submit", (event) => { event.preventDefault(); refilter({}); });
  $("kb-audience").addEventListener("change", (event) => refilter({ audience: event.target.value }));
  $("kb-status").addEventListener("change", (event) => refilter({ status: event.target.value }));
  $("kb-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); });
  $("kb-next").addEventListener("click", () => { state.offset += PAGE_SIZE; load(); });
  list.addEventListener("click", (event) => {
    const row = event.target.closest(".kb-row");
    if (row) openItem(row.dataset.id);
  });

  // Detail ------------------------------------------------------------------------------------
  const lines = (values, tag = "ul") => (values && values.length
    ? `<${tag} class="kb-values">${values.map((v) => `<li>${esc(v)}</li>`).join("")}</${tag}>` : "");
  const words = (values, labels = {}) => (values || []).map((v) => labels[v] || v).join("、");
  const fee = (yuan) => (yuan >= 10000 ? `${(yuan / 10000).toLocaleString("zh-CN")} 万元/年` : `${yuan} 元/年`);
  const outcome = (r) => `${r.metric}：${r.before === null || r.before === undefined ? "" : `${r.before}${r.unit} → `}${r.after}${r.unit}`;

  // Each kind's fields in reading order: [label, html]; empty ones are left out.
  const FIELDS = {
    faq: (d) => [["标准问", esc(d.question)], ["相似问", lines(d.variants)], ["答案", `<div class="kb-text">${esc(d.answer)}</div>`],
      ["分类", esc(d.category)], ["产品", esc(d.product || "")], ["客户旅程", esc(d.journey || "")]],
    case: (d) => [["客户", esc(d.company)], ["行业", esc(d.industry)], ["城市", esc([d.province, d.city].filter(Boolean).join(" · "))],
      ["年费", esc(fee(d.annual_fee))], ["门店数", esc(d.stores ?? "")], ["产品", esc(words(d.products))],
      ["情境", esc(words(d.situation))], ["摘要", `<div class="kb-text">${esc(d.summary)}</div>`],
      ["背景与挑战", `<div class="kb-text">${esc(d.challenge)}</div>`], ["做法", lines(d.actions, "ol")],
      ["成果", lines((d.results || []).map(outcome))], ["见效时间", esc(d.time_to_first_value_days ? `${d.time_to_first_value_days} 天` : "")]],
    playbook: (d) => [["标题", esc(d.title)], ["摘要", `<div class="kb-text">${esc(d.summary)}</div>`],
      ["适用角色", esc(words(d.roles, ROLES))], ["客户旅程", esc(d.journey)], ["适用情境", lines(d.situations)],
      ["步骤", lines(d.steps, "ol")], ["正文", d.body ? `<details class="preview"><summary>展开正文</summary><div class="kb-text">${esc(d.body)}</div></details>` : ""]],
  };

  function detailHtml(item) {
    const fields = [...FIELDS[item.kind](item.data), ["受众", esc(AUDIENCES[item.audience] || item.audience)],
      ["来源文件", esc(fileName(item.source))]];
    return `<dl class="kb-fields">${fields.filter(([, html]) => html !== "").map(([k, html]) => `<dt>${k}</dt><dd>${html}</dd>`).join("")}</dl>`;
  }

  // The main text fields a manager may edit: [field, label, control]; "lines" is one value per line.
  const EDITS = {
    faq: [["question", "标准问", "input"], ["variants", "相似问（每行一个）", "lines"], ["answer", "答案", "text"],
      ["category", "分类", "input"], ["audience", "受众", "audience"]],
    case: [["summary", "摘要", "text"], ["challenge", "背景与挑战", "text"], ["actions", "做法（每行一条）", "lines"],
      ["audience", "受众", "audience"]],
    playbook: [["title", "标题", "input"], ["summary", "摘要", "text"], ["steps", "步骤（每行一步）", "lines"],
      ["audience", "受众", "audience"]],
  };

  function control([field, label, kind], value) {
    const id = `kb-edit-${field}`;
    const input = kind === "input" ? `<input id="${id}" name="${field}" class="input" value="${esc(value)}">`
      : kind === "audience" ? `<select id="${id}" name="${field}" class="input">${Object.entries(AUDIENCES).map(([k, v]) =>
        `<option value="${k}"${k === value ? " selected" : ""}>${v}</option>`).join("")}</select>`
        : `<textarea id="${id}" name="${field}" class="input" rows="${kind === "lines" ? 4 : 5}">${esc(kind === "lines" ? (value || []).join("\n") : value)}</textarea>`;
    return `<div class="field"><label for="${id}">${label}</label>${input}</div>`;
  }

  function editHtml(item) {
    return EDITS[item.kind].map((spec) => control(spec, item.data[spec[0]] ?? "")).join("") +
      `<div class="field"><label for="kb-edit-reason">修改说明（可选）</label><input id="kb-edit-reason" class="input" maxlength="500"></div>
      <div class="form-actions"><button type="button" class="btn btn-ghost" data-cancel>取消</button>
      <button type="submit" class="btn btn-primary">提交修改</button></div>`;
  }

  function edited(item, form) {
    const data = { ...item.data };
    for (const [field, , kind] of EDITS[item.kind]) {
      const value = form.elements[field].value;
      data[field] = kind === "lines" ? value.split("\n").map((v) => v.trim()).filter(Boolean) : value.trim();
    }
    return data;
  }

  function showMode(mode) {
    $("kb-item-body").hidden = mode === "edit";
    $("kb-edit").hidden = mode !== "edit";
    $("kb-change").hidden = mode !== "change";
    $("kb-item-actions").hidden = mode !== "view";
  }

  function renderItem(item) {
    current = item;
    $("kb-item-tags").innerHTML = `<span class="badge kind-${esc(item.kind)}">${esc(KINDS[item.kind] || item.kind)}</span>${statusBadges(item)}`;
    $("kb-item-title").textContent = item.title;
    $("kb-item-id").textContent = item.id;
    $("kb-item-body").innerHTML = detailHtml(item);
    $("kb-toggle-status").textContent = item.status === "retired" ? "恢复" : "下架";
    $("kb-proposed").innerHTML = "";
    showMode("view");
  }

  async function openItem(id) {
    try {
      renderItem(await api("GET", `/api/knowledge/items/${encodeURIComponent(id)}`));
      if (!dialog.open) dialog.showModal();
    } catch (error) {
      toast(error.message, "error", 6000);
    }
  }

  async function propose(body, button) {
    busy(button, true, "提交中…");
    try {
      const action = await api("POST", `/api/knowledge/items/${encodeURIComponent(current.id)}/changes`, body);
      showMode("done");
      $("kb-item-body").hidden = false;
      $("kb-proposed").innerHTML = `<div class="notice kb-notice-ok"><strong>已提交，等待第二个人在「待确认」里确认</strong>
        ${esc(action.summary)} · <a href="/actions">去「待确认」查看</a></div>`;
      refreshBadge();
    } catch (error) {
      $("kb-proposed").innerHTML = `<div class="notice notice-error"><strong>提交失败</strong>${esc(error.message)}</div>`;
    } finally {
      busy(button, false);
    }
  }

  $("kb-edit-open").addEventListener("click", () => {
    $("kb-edit").innerHTML = editHtml(current);
    $("kb-proposed").innerHTML = "";
    showMode("edit");
    $("kb-edit").querySelector(".input").focus();
  });
  $("kb-edit").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const data = edited(current, form);
    if (JSON.stringify(data) === JSON.stringify(current.data)) { toast("内容没有改动"); return; }
    const reason = form.querySelector("#kb-edit-reason").value.trim();
    propose({ change: "edit", data, reason: reason || null }, form.querySelector("[type=submit]"));
  });
  $("kb-toggle-status").addEventListener("click", () => {
    const verb = current.status === "retired" ? "恢复" : "下架";
    $("kb-change-label").textContent = `${verb}原因（可选）`;
    $("kb-change-submit").textContent = `提交${verb}`;
    $("kb-reason").value = "";
    $("kb-proposed").innerHTML = "";
    showMode("change");
    $("kb-reason").focus();
  });
  $("kb-change").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = $("kb-reason").value.trim();
    propose({ change: current.status === "retired" ? "restore" : "retire", reason: reason || null }, $("kb-change-submit"));
  });
  dialog.addEventListener("click", (event) => {
    if (event.target.closest("[data-cancel]")) { $("kb-proposed").innerHTML = ""; showMode("view"); }
    else if (event.target === dialog || event.target.closest("#kb-close")) dialog.close();
  });

  // Files: the documents and sheets the knowledge came from; removing one is proposed, like any change.
  const sources = $("kb-sources");

  function sourceHtml(source) {
    const what = source.kind === "sheet" ? `${source.items} 条知识` : `${source.passages} 段`;
    const gone = source.file_exists ? "" : '<span class="badge badge-retired">原文件已不在</span>';
    return `<li class="kb-source" data-key="${esc(source.key)}">
      <div class="kb-source-row">
        <span class="badge">${source.kind === "sheet" ? "表格" : "文档"}</span>
        <span class="grow"><span class="kb-row-title">${esc(source.name)}</span>
          <span class="kb-row-meta muted small">${esc(what)}${source.title && source.title !== source.name ? ` · ${esc(source.title)}` : ""}</span></span>
        ${gone}<button type="button" class="btn btn-ghost btn-small" data-remove>移除</button>
      </div>
      <form class="kb-remove" hidden>
        <input type="text" class="input" maxlength="500" placeholder="移除原因（可选）" aria-label="移除原因">
        <button type="button" class="btn btn-ghost btn-small" data-cancel-remove>取消</button>
        <button type="submit" class="btn btn-primary btn-small">提交移除</button>
      </form>
      <div class="kb-remove-result" aria-live="polite"></div>
    </li>`;
  }

  async function loadSources() {
    try {
      const found = await api("GET", "/api/knowledge/documents");
      $("kb-sources-total").textContent = `共 ${found.length} 个`;
      sources.innerHTML = found.length ? found.map(sourceHtml).join("")
        : '<li class="empty-line">还没有导入文件。把表格或文档拖到上面的「导入」里。</li>';
    } catch (error) {
      sources.innerHTML = `<li class="notice notice-error"><strong>加载失败</strong>${esc(error.message)}</li>`;
    }
  }

  sources.addEventListener("click", (event) => {
    const row = event.target.closest(".kb-source");
    if (!row) return;
    const form = row.querySelector(".kb-remove");
    if (event.target.closest("[data-remove]")) { form.hidden = false; form.querySelector("input").focus(); }
    if (event.target.closest("[data-cancel-remove]")) form.hidden = true;
  });
  sources.addEventListener("submit", async (event) => {
    event.preventDefault();
    const row = event.target.closest(".kb-source");
    const button = event.target.querySelector("[type=submit]");
    const reason = event.target.querySelector("input").value.trim();
    busy(button, true, "提交中…");
    try {
      const action = await api("POST", "/api/knowledge/documents/removals", { key: row.dataset.key, reason: reason || null });
      event.target.hidden = true;
      row.querySelector("[data-remove]").disabled = true;
      row.querySelector(".kb-remove-result").innerHTML = `<div class="notice kb-notice-ok"><strong>已提交，等待第二个人在「待确认」里确认</strong>
        ${esc(action.summary)} · <a href="/actions">去「待确认」查看</a></div>`;
      refreshBadge();
    } catch (error) {
      row.querySelector(".kb-remove-result").innerHTML = `<div class="notice notice-error"><strong>提交失败</strong>${esc(error.message)}</div>`;
    } finally {
      busy(button, false);
    }
  });

  syncControls();
  load();
  loadSources();
})();
