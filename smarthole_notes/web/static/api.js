// The API over fetch (same origin, cookie auth): JSON in, JSON out; a refusal is an Error
// with the service's message, .status and .key (the field at fault).
import { $ } from "./dom.js";
import { showBanner } from "./header.js";

// ------------------------------------------------------------------ API

export async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401) showBanner("no-access");
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.key = data && data.key;
    throw error;
  }
  return data;
}
