// Behaviour shared by every page; no inline handlers (the pages' CSP forbids them).
(function () {
  "use strict";

  // On a phone the menu folds behind a button.
  const toggle = document.getElementById("menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const menu = document.getElementById(toggle.getAttribute("aria-controls"));
      const open = menu.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // A table or a board wider than the screen scrolls inside its card; keyboard users must
  // be able to reach and scroll it, so such a region takes the focus.
  function focusableScrollers() {
    document.querySelectorAll("table.grid, .table-wrap, .table-scroll, .scroll-x, .kanban").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1 && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
      }
    });
  }
  focusableScrollers();
  window.addEventListener("resize", focusableScrollers);

  // A reminder dated in the past is usually a typo: ask before saving it.  The form
  // carries the question (data-confirm-past) and the company's local time when the page
  // was made (data-now, same format as the input), so the browser's own zone is irrelevant.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches || !form.matches("form[data-confirm-past]")) return;
    const input = form.querySelector('[name="due_at"]');
    if (!input || !input.value) return;
    if (input.value < form.dataset.now && !window.confirm(form.dataset.confirmPast)) {
      event.preventDefault();
    }
  });
})();

// <form data-confirm="Question?"> asks before submitting; <select data-autosubmit>
// submits its form when changed.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
}, true);

document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});
