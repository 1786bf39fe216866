/* People (admin): list, add (the key is shown once), disable / enable, new key. */
"use strict";

(() => {
  const { api, esc, toast, busy } = Copilot;
  const ROLE_LABELS = JSON.parse(document.getElementById("users-page-data")?.textContent || "{}");
  const AUDIENCE_LABELS = { public: "对外", internal: "内部" };
  const body = document.querySelector("#users tbody");

  function showKey(name, key) {
    document.getElementById("new-key-who").textContent = `${name} 的密钥：请现在复制并交给本人。`;
    document.getElementById("new-key").textContent = key;
    document.getElementById("new-key-dialog").showModal();
  }

  function row(user) {
    const signIn = [user.has_key ? "密钥" : "", user.single_sign_on ? "单点登录" : ""].filter(Boolean).join(" + ") || "—";
    const status = user.disabled_at ? `已停用 ${Copilot.formatTime(user.disabled_at)}` : "启用中";
    const toggle = user.disabled_at
      ? `<button type="button" class="btn btn-small" data-enable="${esc(user.id)}">启用</button>`
      : `<button type="button" class="btn btn-small btn-ghost" data-disable="${esc(user.id)}">停用</button>`;
    const rekey = user.disabled_at ? "" : `<button type="button" class="btn btn-small btn-ghost" data-key="${esc(user.id)}">重新生成密钥</button>`;
    return `<tr class="${user.disabled_at ? "is-disabled" : ""}" data-user="${esc(user.name)}">
      <td>${esc(user.name)}</td><td>${esc(ROLE_LABELS[user.role] || user.role)}</td>
      <td>${user.audiences.map((a) => esc(AUDIENCE_LABELS[a] || a)).join("、")}</td>
      <td>${esc(user.email || "")}</td><td>${esc(signIn)}</td><td>${esc(status)}</td>
      <td>${toggle} ${rekey}</td></tr>`;
  }

  async function load() {
    try {
      const users = await api("GET", "/api/users");
      body.innerHTML = users.length ? users.map(row).join("")
        : '<tr><td colspan="7" class="muted">还没有人员。添加第一位管理员后，所有请求都需要个人密钥。</td></tr>';
    } catch (error) {
      body.innerHTML = `<tr><td colspan="7" class="muted">${esc(error.message)}</td></tr>`;
    }
  }

  document.getElementById("user-role").addEventListener("change", (event) => {
    // Support talks to customers: by default it reads only what may be said to them.
    document.getElementById("aud-internal").checked = event.target.value !== "support";
  });

  document.getElementById("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = document.getElementById("user-add");
    const audiences = [...form.querySelectorAll('input[name="audience"]:checked')].map((box) => box.value);
    busy(button, true);
    try {
      const created = await api("POST", "/api/users", { name: form.name.value.trim(), role: form.role.value,
        email: form.email.value.trim() || null, audiences });
      form.name.value = ""; form.email.value = "";
      await load();
      if (created.key) showKey(created.user.name, created.key);
    } catch (error) { toast(error.message, "error"); }
    finally { busy(button, false); }
  });

  body.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const who = button.closest("tr").dataset.user;
    try {
      if (button.dataset.disable) {
        await api("POST", `/api/users/${encodeURIComponent(button.dataset.disable)}/disable`);
        toast(`已停用 ${who}：密钥和登录立即失效`, "success");
      } else if (button.dataset.enable) {
        await api("POST", `/api/users/${encodeURIComponent(button.dataset.enable)}/enable`);
        toast(`已启用 ${who}`, "success");
      } else if (button.dataset.key) {
        const fresh = await api("POST", `/api/users/${encodeURIComponent(button.dataset.key)}/key`);
        showKey(who, fresh.key);
      }
      await load();
    } catch (error) { toast(error.message, "error"); }
  });

  // Shown once: the key leaves the page when the dialog closes.
  document.getElementById("new-key-dialog").addEventListener("close", () => {
    document.getElementById("new-key").textContent = "";
  });

  document.getElementById("copy-key").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(document.getElementById("new-key").textContent); toast("已复制", "success"); }
    catch (_) { toast("请手动选中复制"); }
  });

  load();
})();
