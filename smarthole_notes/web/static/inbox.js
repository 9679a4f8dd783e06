// The inbox dialog and its count: messages not yet answered.
import { api } from "./api.js";
import { $, el, notice, timeElement } from "./dom.js";
import { WAITING_STATES, state } from "./state.js";
import { processAgain, stateLabel } from "./states.js";

// ------------------------------------------------------------------ inbox

let inboxTimer = 0;
export function refreshInboxSoon() {
  // The pipeline cleans the inbox up just after it reports: look a moment later.
  clearTimeout(inboxTimer);
  inboxTimer = setTimeout(refreshInboxCount, 400);
}

export async function refreshInboxCount() {
  try {
    const data = await api("GET", "/api/inbox");
    const waiting = data.messages.filter((m) => WAITING_STATES.has(m.state)).length;
    const count = $("#inbox-count");
    count.textContent = String(waiting);
    count.hidden = waiting === 0;
    $("#inbox-button").setAttribute("aria-label", waiting ? `Inbox, ${waiting} waiting` : "Inbox");
    if ($("#inbox-dialog").open) renderInbox(data.messages);
  } catch {
    /* the count is a hint; the dialog shows errors */
  }
}

function renderInbox(messages) {
  const list = $("#inbox-list");
  list.replaceChildren(
    ...messages.map((m) =>
      el(
        "li",
        { class: "inbox-item", dataset: { id: m.id } },
        el(
          "div",
          { class: "msg-meta" },
          el("span", {
            class: `badge state ${m.state.replaceAll("_", "-")}`,
            text: m.state === "processing" ? "processing now" : stateLabel(m),
          }),
          el("span", { class: "source", text: m.source === "smarthole" ? `SmartHole (${m.input_method})` : "chat" }),
          timeElement(m.timestamp || null),
          m.attempts ? el("span", { text: `${m.attempts} attempt${m.attempts === 1 ? "" : "s"}` }) : null,
        ),
        el("div", { class: "inbox-text", text: m.text }),
        m.error ? el("p", { class: "inbox-error", text: m.error }) : null,
        el("button", {
          type: "button",
          text: "Process again",
          disabled: m.state === "processing" || m.state === "queued" || undefined,
          onclick: async (event) => {
            event.target.disabled = true;
            await processAgain(m.id);
          },
        }),
      ),
    ),
  );
  $("#inbox-empty").hidden = messages.length > 0;
}

export async function openInbox() {
  const dialog = $("#inbox-dialog");
  if (!dialog.open) dialog.showModal();
  try {
    const data = await api("GET", "/api/inbox");
    renderInbox(data.messages);
  } catch (error) {
    notice(error.message);
  }
}
