// Behaviour every page shares, bound from data- attributes: the pages carry no inline
// handlers (the Content-Security-Policy forbids inline script), so text a user typed can
// never become code.
//   <form data-confirm="Question?">   asks before submitting
//   <select data-autosubmit>          submits its form when changed
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
}, true);

document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});
