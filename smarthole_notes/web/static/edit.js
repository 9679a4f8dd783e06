// Editing a sent message: the message and what follows become an archived branch.
import { api } from "./api.js";
import { $, el, notice } from "./dom.js";
import { updateTotal } from "./messages.js";

// ------------------------------------------------------------------ edit and fork

export function startEdit(node) {
  if (node.querySelector(".edit-box")) return;
  const body = node.querySelector(".msg-body");
  const area = el("textarea", { "aria-label": "Edit message" });
  area.value = node.rawText;
  const cancel = () => {
    box.remove();
    body.hidden = false;
    node.querySelector(".actions").hidden = false;
    node.querySelector("button.edit")?.focus();
  };
  const submit = async () => {
    const text = area.value;
    if (!text.trim()) return;
    // The message and everything after it become an archived branch: no longer shown.
    // Taken now: the edited message may arrive (and be appended) before the reply does.
    const archived = [];
    for (let next = node; next; next = next.nextSibling) archived.push(next);
    try {
      await api("POST", `/api/messages/${encodeURIComponent(node.dataset.messageId)}/fork`, { text });
    } catch (error) {
      notice(error.message);
      return;
    }
    // What the archived branch cost was paid: it stays in the conversation's total.
    const section = node.closest("section.conversation");
    const paid = archived.map((old) => old.usage).filter(Boolean);
    for (const old of archived) old.remove();
    if (section) {
      section.archivedUsages = [...(section.archivedUsages || []), ...paid];
      updateTotal(section);
    }
  };
  const box = el(
    "div",
    { class: "edit-box" },
    area,
    el(
      "div",
      { class: "edit-actions" },
      el("button", { type: "button", class: "plain", text: "Cancel", onclick: cancel }),
      el("button", { type: "button", class: "primary", text: "Send edit", onclick: submit }),
    ),
  );
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  body.hidden = true;
  node.querySelector(".actions").hidden = true;
  body.after(box);
  area.focus();
}
