// Small DOM helpers: element building, times, lookups of message nodes, scrolling, notices.
import { state } from "./state.js";

export const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------ small helpers

let noticeTimer = 0;
export function notice(text) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.add("show");
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => box.classList.remove("show"), 2600);
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function localTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return { short: "", full: "" };
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const day = date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
  return { short: sameDay ? time : `${day}, ${time}`, full: date.toLocaleString(), iso: date.toISOString() };
}

export function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })}, ${time}`;
}

export function timeElement(iso) {
  const t = localTime(iso);
  return el("time", { datetime: t.iso, title: t.full, text: t.short });
}

export function cssEscape(value) {
  return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
}

export function findUser(messageId) {
  return document.querySelector(`.msg.user[data-message-id="${cssEscape(messageId)}"]`);
}

export function findAnswer(messageId) {
  return document.querySelector(`.msg.assistant[data-reply-to="${cssEscape(messageId)}"]`);
}

export const log = () => $("#log");

export function nearBottom() {
  const box = log();
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

export function scrollToBottom(force = false) {
  if (force || state.stickToBottom) {
    const box = log();
    box.scrollTop = box.scrollHeight;
  }
}
