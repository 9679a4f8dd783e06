// Dropped links and file paths -> vault-relative paths, for the message box.

/** The vault-relative path for one dropped line, or the line unchanged if it is neither. */
export function vaultPathFor(line, vault) {
  const text = line.trim();
  if (!text) return "";
  if (text.toLowerCase().startsWith("obsidian://")) return fromObsidianUrl(text, vault) ?? text;
  if (text.toLowerCase().startsWith("file://")) {
    try {
      return relativeTo(decodeURIComponent(new URL(text).pathname), vault);
    } catch {
      return text;
    }
  }
  if (text.startsWith("/") || /^[A-Za-z]:[\\/]/.test(text) || text.startsWith("\\\\")) {
    return relativeTo(text, vault);
  }
  return text;
}

function fromObsidianUrl(text, vault) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const params = url.searchParams;
  const file = params.get("file");
  if (file) return withExtension(file.replace(/\\/g, "/").replace(/^\/+/, ""));
  const path = params.get("path");
  if (path) return relativeTo(path, vault);
  return null;
}

function withExtension(path) {
  const last = path.split("/").pop() || "";
  return last.includes(".") ? path : `${path}.md`;
}

function relativeTo(path, vault) {
  const normal = path.replace(/\\/g, "/");
  const root = (vault || "").replace(/\\/g, "/").replace(/\/+$/, "");
  if (root && normal.startsWith(root + "/")) return normal.slice(root.length + 1);
  return normal;
}

/** Every path a drop carries (Obsidian links, file URLs, plain paths, dropped files). */
export function droppedPaths(dataTransfer, vault) {
  const raw = dataTransfer.getData("text/uri-list") || dataTransfer.getData("text/plain") || "";
  const lines = raw
    .split(/\r?\n/)
    .filter((line) => line.trim() && !line.startsWith("#"))
    .map((line) => vaultPathFor(line, vault))
    .filter(Boolean);
  if (lines.length) return lines;
  return Array.from(dataTransfer.files || [], (file) => file.name);
}
