// Safe Markdown: markdown-it with raw HTML off, then DOMPurify on the result.
// Model output and note contents can carry HTML and script; neither survives. Links open
// in a new tab without a referrer; images from the internet are not loaded (the CSP would
// block them anyway), their alt text is shown instead.
import markdownit from "./vendor/markdown-it.min.js";
import DOMPurify from "./vendor/purify.es.js";

const md = markdownit({ html: false, linkify: true, breaks: true, typographer: false });

const ALLOWED_URI = /^(?:(?:https?|mailto|obsidian):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i;

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  ALLOWED_URI_REGEXP: ALLOWED_URI,
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "svg", "math"],
  FORBID_ATTR: ["style", "id", "class"],
};

/** Replace `element`'s content with `text` rendered as safe Markdown. */
export function renderMarkdown(element, text) {
  const fragment = DOMPurify.sanitize(md.render(text || ""), PURIFY);
  for (const img of fragment.querySelectorAll("img")) {
    const src = img.getAttribute("src") || "";
    const label = document.createElement("span");
    label.className = "image-alt";
    label.textContent = `[image${img.alt ? ": " + img.alt : ""}]`;
    if (!src.startsWith("data:")) img.replaceWith(label);
  }
  element.replaceChildren(fragment);
}
