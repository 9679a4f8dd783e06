import { api } from "./api.js";
import { loadHistory } from "./conversations.js";
import { $, cssEscape, el, notice } from "./dom.js";
import { loadModels, showBanner } from "./header.js";
import { money, usageText } from "./messages.js";
import { state } from "./state.js";

// ------------------------------------------------------------------ settings
// The form is built from the served schema (`SettingsUpdate` in /openapi.json): each field's
// label, help, bounds and group come from the service's Settings model, declared once there.

let formReady = null;

// "1, 5, 15" -> [1, 5, 15]; anything unreadable is sent as typed, for the service to explain.
function listValue(text) {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const numbers = parts.map(Number);
  return parts.length && numbers.every((n) => Number.isFinite(n)) ? numbers : text;
}

function range(low, high) {
  return low !== undefined && high !== undefined ? `${low} to ${high}` : "";
}

function generateButton(input) {
  const status = el("span", { class: "hint", role: "status" });
  return el(
    "div",
    { class: "field-actions" },
    el("button", {
      type: "button",
      text: "Generate from information architecture",
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        status.textContent = "Writing…";
        try {
          const architecture = $("#setting-information_architecture").value;
          const data = await api("POST", "/api/settings/routing-description/generate", {
            information_architecture: architecture,
          });
          input.value = data.routing_description;
          status.textContent = "Written: review it, then save.";
        } catch (error) {
          status.textContent = error.message;
        } finally {
          button.disabled = false;
        }
      },
    }),
    status,
  );
}

// One field from its schema: a checkbox, a number with its bounds, a list of numbers, a
// line of text or a text area.
function settingField(key, schema) {
  const id = `setting-${key}`;
  const widget = schema["x-widget"];
  let hint = schema.description || "";
  const attributes = { id, name: key, "aria-describedby": `${id}-hint ${id}-error` };
  let kind = "text";
  let input;
  if (schema.type === "boolean") {
    kind = "checkbox";
    input = el("input", { ...attributes, type: "checkbox" });
  } else if (schema.type === "integer" || schema.type === "number") {
    kind = "number";
    const bounds = range(schema.minimum, schema.maximum);
    if (bounds) hint = `${hint} ${bounds}.`.trim();
    input = el("input", {
      ...attributes,
      type: "number",
      min: schema.minimum,
      max: schema.maximum,
      step: schema.type === "integer" ? "1" : "any",
    });
  } else if (schema.type === "array") {
    kind = "list";
    const items = schema.items || {};
    hint = `${hint} ${schema.minItems} to ${schema.maxItems} values, each ${range(items.minimum, items.maximum)}.`.trim();
    input = el("input", { ...attributes, type: "text", inputmode: "decimal" });
    input.dataset.list = "true";
  } else if (widget === "textarea" || widget === "routing") {
    input = el("textarea", { ...attributes, maxlength: schema.maxLength, spellcheck: "true" });
  } else {
    input = el("input", {
      ...attributes,
      type: "text",
      maxlength: schema.maxLength,
      list: widget === "model" ? "model-options" : undefined,
      spellcheck: "false",
    });
  }
  input.dataset.key = key;
  const wrapper = el("div", { class: `field${kind === "checkbox" ? " check" : ""}`, dataset: { key } });
  if (kind === "checkbox") wrapper.append(el("label", { for: id }, input, el("span", { text: schema.title })));
  else wrapper.append(el("label", { for: id, text: schema.title }), input);
  wrapper.append(el("p", { id: `${id}-hint`, class: "hint", text: hint }));
  if (widget === "routing") wrapper.append(generateButton(input));
  wrapper.append(el("p", { id: `${id}-error`, class: "error", hidden: true }));
  return wrapper;
}

async function buildSettingsForm() {
  const document_ = await api("GET", "/openapi.json");
  const properties = document_.components.schemas.SettingsUpdate.properties;
  const container = $("#settings-fields");
  const groups = new Map();
  for (const [key, schema] of Object.entries(properties)) {
    if (key === "api_key") continue; // its own fieldset: write-only, never shown
    const group = schema["x-group"] || "Other";
    if (!groups.has(group)) {
      const fieldset = el("fieldset", {}, el("legend", { text: group }));
      groups.set(group, fieldset);
      container.append(fieldset);
    }
    groups.get(group).append(settingField(key, schema));
  }
  container.append(el("datalist", { id: "model-options" }));
}

function fillSettings(view) {
  state.settings = view.settings;
  for (const [key, value] of Object.entries(view.settings)) {
    const input = document.getElementById(`setting-${key}`);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = !!value;
    else if (Array.isArray(value)) input.value = value.join(", ");
    else input.value = value;
  }
  // A key whose value in settings.toml is invalid: the form shows the default in effect,
  // marked, and saving writes what is shown.
  state.invalidKeys = Object.keys(view.invalid || {});
  for (const [key, message] of Object.entries(view.invalid || {})) {
    const input = document.getElementById(`setting-${key}`);
    const box = document.getElementById(`setting-${key}-error`);
    if (input) input.setAttribute("aria-invalid", "true");
    if (box) {
      box.textContent = `${message}. Saving writes the value shown.`;
      box.hidden = false;
    }
  }
  const from = view.api_key.source === "environment" ? " (from ANTHROPIC_API_KEY, which takes precedence)" : view.api_key.source === "file" ? " (saved)" : "";
  $("#api-key-status").textContent = view.api_key.status === "set" ? `Set${from}` : "Not set";
  $("#api-key-remove").hidden = view.api_key.source !== "file";
  $("#api-key").value = "";
  const problems = $("#settings-problems");
  problems.textContent = view.problems.join("\n");
  problems.hidden = view.problems.length === 0;
  for (const key of view.overridden || []) {
    const wrapper = document.querySelector(`.field[data-key="${cssEscape(key)}"]`);
    if (wrapper && !wrapper.querySelector(".overridden")) {
      wrapper.append(el("p", { class: "hint overridden", text: "Set by a command-line flag for this run; saving here overrides it." }));
    }
  }
  showBanner(view.api_key.status === "set" ? null : "no-key");
}

function clearFieldErrors() {
  for (const node of document.querySelectorAll("#settings-form .error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of document.querySelectorAll("#settings-form [aria-invalid]")) node.removeAttribute("aria-invalid");
}

function changedSettings() {
  const changes = {};
  const invalid = new Set(state.invalidKeys || []);
  for (const [key, old] of Object.entries(state.settings || {})) {
    const input = document.getElementById(`setting-${key}`);
    if (!input) continue;
    let value;
    if (input.type === "checkbox") value = input.checked;
    else if (input.dataset.list) value = listValue(input.value);
    else if (input.type === "number") {
      value = input.value.trim() === "" ? input.value : Number(input.value);
      if (Number.isNaN(value)) value = input.value;
    } else value = input.value;
    if (invalid.has(key) || JSON.stringify(value) !== JSON.stringify(old)) changes[key] = value;
  }
  const key = $("#api-key").value.trim();
  if (key) changes.api_key = key;
  return changes;
}

function markField(key, message) {
  const input = key === "api_key" ? $("#api-key") : document.getElementById(`setting-${key}`);
  const box = document.getElementById(`setting-${key}-error`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

async function saveSettings(event) {
  event.preventDefault();
  clearFieldErrors();
  const status = $("#settings-status");
  status.classList.remove("error");
  const changes = changedSettings();
  for (const [key, value] of Object.entries(changes)) {
    const input = document.getElementById(`setting-${key}`);
    if (input && input.dataset.list && !Array.isArray(value)) {
      const message = "Enter minutes as numbers separated by commas, such as 1, 5, 15, 60, 240.";
      markField(key, message);
      status.textContent = message;
      status.classList.add("error");
      return;
    }
  }
  if (!Object.keys(changes).length) {
    status.textContent = "Nothing changed.";
    return;
  }
  status.textContent = "Saving…";
  try {
    const view = await api("PUT", "/api/settings", changes);
    fillSettings(view);
    status.textContent = view.warning ? view.warning : "Saved.";
    if ("model" in changes) loadModels();
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
    if (error.key) markField(error.key, error.message);
  }
}

export async function openSettings() {
  const dialog = $("#settings-dialog");
  $("#settings-status").textContent = "";
  try {
    await formReady;
    clearFieldErrors();
    fillSettings(await api("GET", "/api/settings"));
  } catch (error) {
    notice(error.message);
    return;
  }
  if (!dialog.open) dialog.showModal();
  showIndexStatus();
  showSpending();
}

// "About $1.23 since 1 November: 412k in · 8k out …": this month's answers, failed
// attempts and side jobs (kept apart from the history: clearing it does not change this).
async function showSpending() {
  const line = $("#spending");
  try {
    const spending = await api("GET", "/api/spending");
    // The service's own calendar day (its local midnight), whatever this browser's zone.
    const since = new Date(`${spending.since.slice(0, 10)}T00:00:00Z`).toLocaleDateString([], { day: "numeric", month: "long", timeZone: "UTC" });
    if (!spending.usage) {
      line.textContent = `Nothing spent since ${since}.`;
      return;
    }
    const cost = spending.usage.cost_usd;
    const price = cost === null || cost === undefined ? "No price is known for a model used" : `About ${money(cost)}`;
    line.textContent = `${price} since ${since}: ${usageText({ ...spending.usage, cost_usd: null })}. Estimated from list prices: answers, failed attempts and side jobs (summaries, commit messages).`;
  } catch (error) {
    line.textContent = `Spending unavailable: ${error.message}`;
  }
}

// "2,324 notes indexed, last change taken in at 10:42": what search_notes searches.
async function showIndexStatus() {
  const line = $("#index-status");
  try {
    const index = (await api("GET", "/api/status")).search_index;
    if (!index) {
      line.textContent = "No search index for this vault.";
      return;
    }
    const when = index.last_update ? `, last change taken in at ${new Date(index.last_update).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
    line.textContent = `${index.description[0].toUpperCase()}${index.description.slice(1)}${index.state === "ready" ? when : ""}.`;
  } catch (error) {
    line.textContent = `Index status unavailable: ${error.message}`;
  }
}

// Builds the form (from the schema) and wires the dialog; resolves once the form is there.
export function setupSettings() {
  formReady = buildSettingsForm();
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#api-key-remove").addEventListener("click", async () => {
    try {
      fillSettings(await api("PUT", "/api/settings", { api_key: null }));
      $("#settings-status").textContent = "Saved key removed.";
    } catch (error) {
      $("#settings-status").textContent = error.message;
    }
  });
  $("#clear-history").addEventListener("click", () => {
    const confirm = $("#confirm-dialog");
    confirm.returnValue = "";
    confirm.showModal();
  });
  $("#confirm-dialog").addEventListener("close", async () => {
    if ($("#confirm-dialog").returnValue !== "confirm") return;
    try {
      await api("POST", "/api/conversations/clear", { confirm: true });
      $("#settings-status").textContent = "Conversation history cleared.";
      await loadHistory(false);
    } catch (error) {
      $("#settings-status").textContent = error.message;
    }
  });
  return formReady;
}
