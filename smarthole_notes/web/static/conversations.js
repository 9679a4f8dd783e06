// Conversations in the log: sections, the history and its older pages, syncing the newest.
import { api } from "./api.js";
import { $, cssEscape, el, findUser, log, notice, scrollToBottom, timeElement } from "./dom.js";
import { messageNode, updateTotal } from "./messages.js";
import { HISTORY_PAGE, state } from "./state.js";
import { applyAllStates, refreshBadges } from "./states.js";

// ------------------------------------------------------------------ conversations

function conversationSection(conversation) {
  const section = el("section", { class: "conversation", dataset: { id: conversation.id || "" } });
  section.dataset.active = conversation.active ? "true" : "false";
  const title = conversation.title || (conversation.active ? "Current conversation" : "Conversation");
  const heading = el("h2", { text: title });
  const when = el("span", { class: "when" }, timeElement(conversation.started_at));
  section.append(el("header", { class: "boundary" }, heading, when), el("div", { class: "messages" }));
  section.setAttribute("aria-label", title);
  for (const message of conversation.messages || []) section.lastChild.append(messageNode(message, conversation));
  section.sideUsages = conversation.side_usage ? [conversation.side_usage] : [];
  section.archivedUsages = conversation.archived_usage ? [conversation.archived_usage] : [];
  updateTotal(section);
  return section;
}

function sections() {
  return Array.from(document.querySelectorAll("#conversations > section.conversation"));
}

export function activeMessages() {
  const all = sections();
  let last = all[all.length - 1];
  if (!last || last.dataset.active !== "true") {
    last = conversationSection({ id: "", active: true, started_at: new Date().toISOString() });
    $("#conversations").append(last);
  }
  return last.querySelector(".messages");
}

// `keepLive`: messages shown live but not in the fetched history yet (still being
// processed) stay; after a clear nothing stays.
export async function loadHistory(keepLive = true) {
  const page = await api("GET", `/api/conversations?limit=${HISTORY_PAGE}&messages=true`);
  const container = $("#conversations");
  unplacedSideCosts.clear(); // the history counts them all
  const live = keepLive ? container.querySelectorAll(".msg") : [];
  container.replaceChildren(...page.conversations.slice().reverse().map(conversationSection));
  // Messages that arrived while the page loaded (not yet in the fetched history) stay.
  for (const node of live) {
    const id = node.dataset.messageId || node.dataset.replyTo;
    if (id && !container.querySelector(`[data-message-id="${cssEscape(id)}"], [data-reply-to="${cssEscape(id)}"]`)) {
      activeMessages().append(node);
    }
  }
  state.nextBefore = page.next_before;
  updateOlder();
  applyAllStates();
  refreshBadges();
  scrollToBottom(true);
}

export async function loadOlder() {
  if (state.loadingOlder || !state.nextBefore) return;
  state.loadingOlder = true;
  try {
    const page = await api(
      "GET",
      `/api/conversations?limit=${HISTORY_PAGE}&messages=true&before=${encodeURIComponent(state.nextBefore)}`,
    );
    const box = log();
    const fromBottom = box.scrollHeight - box.scrollTop;
    const container = $("#conversations");
    for (const conversation of page.conversations) {
      if (!container.querySelector(`section[data-id="${cssEscape(conversation.id)}"]`)) {
        container.prepend(conversationSection(conversation));
      }
    }
    applyAllStates();
    box.scrollTop = box.scrollHeight - fromBottom;
    state.nextBefore = page.next_before;
  } catch (error) {
    notice(`Could not load older conversations: ${error.message}`);
  } finally {
    state.loadingOlder = false;
    updateOlder();
  }
}

function updateOlder() {
  $("#load-older").hidden = !state.nextBefore;
  $("#history-start").hidden = state.nextBefore !== null || sections().length === 0;
}

// Reconcile the newest conversation with the server after an answer: its id, whether it is
// still active, and a boundary where a new conversation began.
export async function syncActive(messageId) {
  let page;
  try {
    page = await api("GET", "/api/conversations?limit=2");
  } catch {
    return;
  }
  const newest = page.conversations[0];
  if (!newest) return;
  const all = sections();
  const last = all[all.length - 1];
  if (!last) return;
  if (!last.dataset.id) {
    last.dataset.id = newest.id;
  } else if (last.dataset.id !== newest.id && messageId) {
    // A new conversation began with this message: move it (and what follows) into one.
    const first = findUser(messageId);
    if (first && last.contains(first)) {
      const fresh = conversationSection({ ...newest, messages: [] });
      const target = fresh.querySelector(".messages");
      let node = first;
      while (node) {
        const next = node.nextSibling;
        target.append(node);
        node = next;
      }
      last.dataset.active = "false";
      $("#conversations").append(fresh);
      fresh.sideUsages = [];
      fresh.archivedUsages = [];
      updateTotal(last); // what moved counts in the new conversation now
      updateTotal(fresh);
    }
  }
  const current = sections();
  const tail = current[current.length - 1];
  if (tail && tail.dataset.id === newest.id) tail.dataset.active = newest.active ? "true" : "false";
  for (const conversation of page.conversations) {
    const section = document.querySelector(`section[data-id="${cssEscape(conversation.id)}"]`);
    if (section && conversation.title) {
      section.querySelector(".boundary h2").textContent = conversation.title;
      section.setAttribute("aria-label", conversation.title);
    }
    if (section && !conversation.active) section.dataset.active = "false";
  }
  placeSideCosts();
}

// Side costs of a conversation not on the page yet (a live one the page has not split off
// or identified): placed when its section appears.
const unplacedSideCosts = new Map();

function placeSideCosts() {
  for (const [id, usages] of unplacedSideCosts) {
    const section = document.querySelector(`#conversations > section.conversation[data-id="${cssEscape(id)}"]`);
    if (!section) continue;
    section.sideUsages = [...(section.sideUsages || []), ...usages];
    unplacedSideCosts.delete(id);
    updateTotal(section);
  }
}

// A side job (summary, retrospection, commit message) of a conversation was billed.
export async function onSideCost(event) {
  if (!event.conversation_id) return;
  const id = event.conversation_id;
  unplacedSideCosts.set(id, [...(unplacedSideCosts.get(id) || []), event.usage]);
  try {
    placeSideCosts();
    if (unplacedSideCosts.has(id)) await syncActive(); // places it if it is the newest
  } catch (error) {
    console.warn("side cost not shown yet", error);
  }
}
