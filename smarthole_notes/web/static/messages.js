// One node per kind of message: the user's, answers, refusals, system notes.
import { renderMarkdown } from "./markdown.js";
import { api } from "./api.js";
import { $, el, notice, timeElement } from "./dom.js";
import { startEdit } from "./edit.js";
import { state } from "./state.js";
import { stateOf } from "./states.js";
import { agentMessageNode } from "./streaming.js";

// ------------------------------------------------------------------ messages

function sourceLabel(message) {
  if (message.source === "smarthole") return message.input_method === "voice" ? "voice" : "text";
  if (message.source === "system") return "system";
  return "typed";
}

export function actionBar(...buttons) {
  return el("div", { class: "actions" }, ...buttons);
}

export function copyButton(getText) {
  return el("button", {
    type: "button",
    class: "copy",
    text: "Copy",
    "aria-label": "Copy message",
    onclick: async () => {
      const text = getText();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const area = el("textarea", { class: "visually-hidden" });
        area.value = text;
        document.body.append(area);
        area.select();
        document.execCommand("copy");
        area.remove();
      }
      notice("Copied");
    },
  });
}

export function userMessage(message) {
  const body = el("div", { class: "msg-body plain", text: message.content });
  const meta = el(
    "div",
    { class: "msg-meta" },
    el("span", { class: "who", text: "You" }),
    el("span", { class: "source", text: sourceLabel(message) }),
    timeElement(message.created_at),
  );
  const node = el("article", {
    class: "msg user",
    "aria-label": `You, ${sourceLabel(message)}`,
    dataset: { messageId: message.message_id || "" },
  });
  node.rawText = message.content;
  const edit = el("button", {
    type: "button",
    class: "edit",
    text: "Edit",
    "aria-label": "Edit message",
    onclick: () => startEdit(node),
  });
  node.append(meta, body, actionBar(copyButton(() => node.rawText), message.message_id ? edit : null));
  setRequestCost(node, message.usage || null);
  return node;
}

// What a request's attempts that ended without an answer (failed, refused, stopped) cost.
export function setRequestCost(node, usage) {
  node.usage = usage;
  let line = node.querySelector(".msg-meta .usage");
  if (!usage) {
    if (line) line.remove();
    return;
  }
  if (!line) {
    line = el("span", { class: "usage unanswered" });
    node.querySelector(".msg-meta").append(line);
  }
  line.textContent = `unanswered attempts: ${usageText(usage)}`;
  line.title = `What this message's attempts that ended without an answer (failed, refused or stopped) cost\n${usageTitle(usage)}`;
}

function toolItem(tool) {
  const outcome = tool.running ? "running…" : tool.is_error ? "failed" : "succeeded";
  const item = el(
    "li",
    { class: `tool ${tool.running ? "running" : tool.is_error ? "failed" : "ok"}` },
    el("span", { class: "tool-name", text: tool.name }),
    el("span", { class: "tool-outcome", text: outcome }),
    el("code", { class: "tool-input", text: tool.input_summary || "" }),
    tool.summary ? el("span", { class: "tool-summary", text: tool.summary }) : null,
  );
  item.dataset.tool = tool.name;
  return item;
}

function toolsBlock(tools, open = false) {
  const details = el("details", { class: "tools", open: open || undefined });
  const summary = el("summary");
  const list = el("ul");
  details.append(summary, list);
  setTools(details, tools);
  return details;
}

export function setTools(details, tools) {
  const list = details.querySelector("ul");
  list.replaceChildren(...tools.map(toolItem));
  const failed = tools.filter((t) => t.is_error && !t.running).length;
  const count = `${tools.length} tool${tools.length === 1 ? "" : "s"} used`;
  details.querySelector("summary").textContent = failed ? `${count} (${failed} failed)` : count;
  details.hidden = tools.length === 0;
  details.tools = tools;
}

export function assistantMessage(message) {
  const body = el("div", { class: "msg-body markdown" });
  renderMarkdown(body, message.content);
  const node = el("article", {
    class: "msg assistant",
    "aria-label": "Assistant",
    dataset: { replyTo: message.reply_to_message_id || "" },
  });
  node.rawText = message.content;
  const meta = el(
    "div",
    { class: "msg-meta" },
    el("span", { class: "who", text: "Assistant" }),
    timeElement(message.created_at),
  );
  const tools = toolsBlock(message.tools_used || []);
  const buttons = [copyButton(() => node.rawText)];
  if (state.undoAvailable && message.reply_to_message_id && changedFiles(message.tools_used)) {
    buttons.push(undoButton(message.reply_to_message_id));
  }
  node.usage = message.usage || null;
  if (node.usage) meta.append(el("span", { class: "usage", text: usageText(node.usage), title: usageTitle(node.usage) }));
  node.append(meta, body, tools, actionBar(...buttons));
  return node;
}

// ------------------------------------------------------------------ cost, discreetly

const count = (n) => (n >= 10000 ? `${Math.round(n / 1000)}k` : n.toLocaleString());

export function money(usd) {
  if (usd === null || usd === undefined) return "";
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

// "1,234 in · 56 out · 2k cached · $0.0031": input counts every token the model read.
export function usageText(usage) {
  const read = usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens;
  const parts = [`${count(read)} in`, `${count(usage.output_tokens)} out`];
  if (usage.cache_read_tokens) parts.push(`${count(usage.cache_read_tokens)} cached`);
  const cost = money(usage.cost_usd);
  if (cost) parts.push(cost);
  return parts.join(" · ");
}

function usageTitle(usage) {
  return [
    usage.model ? `Model: ${usage.model}` : "",
    `Input: ${usage.input_tokens.toLocaleString()} uncached, ${usage.cache_write_tokens.toLocaleString()} written to the cache, ${usage.cache_read_tokens.toLocaleString()} read from it`,
    `Output: ${usage.output_tokens.toLocaleString()}`,
    usage.cost_usd === null || usage.cost_usd === undefined ? "" : "Cost: an estimate from list prices",
  ].filter(Boolean).join("\n");
}

// A conversation's total, in its header: the sum over the answers shown in it and the
// attempts of its requests that ended without an answer.
export function updateTotal(section) {
  if (!section) return;
  const answers = [...section.querySelectorAll(".msg.assistant")].map((n) => n.usage).filter(Boolean);
  const unanswered = [...section.querySelectorAll(".msg.user")].map((n) => n.usage).filter(Boolean);
  const side = section.sideUsages || [];
  const archived = section.archivedUsages || [];
  const usages = [...answers, ...unanswered, ...side, ...archived];
  let total = section.querySelector(".boundary .usage-total");
  if (!usages.length) {
    if (total) total.remove();
    return;
  }
  const sum = { input_tokens: 0, output_tokens: 0, cache_write_tokens: 0, cache_read_tokens: 0, cost_usd: 0 };
  for (const u of usages) {
    for (const key of ["input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"]) sum[key] += u[key] || 0;
    sum.cost_usd = u.cost_usd === null || u.cost_usd === undefined || sum.cost_usd === null ? null : sum.cost_usd + u.cost_usd;
  }
  if (!total) {
    total = el("span", { class: "usage usage-total" });
    section.querySelector(".boundary").append(total);
  }
  const counted = [`${answers.length} answer${answers.length === 1 ? "" : "s"}`];
  if (unanswered.length) counted.push("unanswered attempts");
  if (side.length) counted.push("side jobs");
  if (archived.length) counted.push("earlier branches");
  total.textContent = `${counted.join(" + ")}: ${usageText(sum)}`;
  const sideNote = side.length ? "\nSide jobs: the conversation's summary, retrospection and commit messages" : "";
  const archivedNote = archived.length ? "\nEarlier branches: answers and attempts an edit replaced" : "";
  total.title = usageTitle(sum) + sideNote + archivedNote;
}

function changedFiles(tools) {
  return (tools || []).some((t) => state.writingTools.has(t.name) && !t.is_error);
}

function undoButton(messageId) {
  return el("button", {
    type: "button",
    class: "undo",
    text: "Undo",
    "aria-label": "Undo the changes of this answer",
    onclick: async () => {
      try {
        const result = await api("POST", `/api/messages/${encodeURIComponent(messageId)}/undo`, {});
        notice(result.detail || "Undone");
      } catch (error) {
        notice(error.message);
      }
    },
  });
}

export function systemMessage(message, title) {
  const heading = title ? `Retrospection: ${title}` : "System";
  const body = el("div", { class: "msg-body markdown" });
  renderMarkdown(body, message.content);
  const node = el(
    "article",
    { class: `msg system${title !== undefined ? " retrospection" : ""}`, "aria-label": heading },
    el("div", { class: "msg-meta" }, el("span", { class: "who", text: heading }), timeElement(message.created_at)),
    body,
  );
  node.rawText = message.content;
  node.append(actionBar(copyButton(() => node.rawText)));
  return node;
}

export function messageNode(message, conversation) {
  if (message.role === "user") {
    if (message.message_id && message.state) state.messageStates.set(message.message_id, stateOf(message));
    return userMessage(message);
  }
  if (message.role === "assistant") {
    if (message.kind === "refusal") return refusalMessage(message.reply_to_message_id, message.content, message.created_at);
    if (message.kind === "update" || message.kind === "question") {
      return agentMessageNode(message.reply_to_message_id, message.content, message.kind === "question", message.created_at);
    }
    return assistantMessage(message);
  }
  if (message.kind === "retrospection") {
    return systemMessage(message, (conversation && conversation.title) || retrospectionTitle(message));
  }
  const retro = /^#*\s*retrospection/i.test(message.content || "");
  return systemMessage(message, retro ? retrospectionTitle(message) : undefined);
}

// A refusal: Claude declined the request. Shown as such, never as an answer.
export function refusalMessage(messageId, text, createdAt) {
  const body = el("div", { class: "msg-body plain", text });
  const node = el(
    "article",
    { class: "msg refusal", "aria-label": "Refused", dataset: { replyTo: messageId || "", refusal: "true" } },
    el(
      "div",
      { class: "msg-meta" },
      el("span", { class: "who", text: "Assistant" }),
      el("span", { class: "badge refused", text: "refused" }),
      timeElement(createdAt),
    ),
    body,
  );
  node.rawText = text;
  node.append(actionBar(copyButton(() => node.rawText)));
  return node;
}

function retrospectionTitle(message) {
  const first = (message.content || "").split("\n")[0].replace(/^#+\s*/, "").replace(/^retrospection:\s*/i, "");
  return first.slice(0, 120) || "conversation";
}
