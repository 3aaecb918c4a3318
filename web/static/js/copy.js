import { t } from "./i18n.js";
// Copy buttons: copy the target input's value and say so.
for (const button of document.querySelectorAll("button.copy")) {
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.copyTarget);
    const feedback = document.querySelector(".copy-feedback");
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select();
      document.execCommand("copy");
    }
    button.textContent = t("Copied");
    if (feedback) feedback.textContent = t("Link copied to the clipboard.");
    setTimeout(() => (button.textContent = t("Copy")), 2000);
  });
}
