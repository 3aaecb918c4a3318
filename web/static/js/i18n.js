// The page's texts in the reader's language. The server puts this language's translations of
// the JS modules' texts (the same gettext catalogue as the pages) into the page as JSON;
// t("Candidate {name} left", { name }) looks a text up and fills in its {placeholders}.
const node = document.getElementById("js-messages");
const messages = node ? JSON.parse(node.textContent || "{}") : {};

export const language = document.documentElement.lang || "en";

export function t(text, values = {}) {
  const translated = messages[text] || text;
  return translated.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
