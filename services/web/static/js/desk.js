// The desk's only script of its own (CSP allows no inline script): print buttons, and focus
// on the error summary so that a screen reader announces what to fix.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
