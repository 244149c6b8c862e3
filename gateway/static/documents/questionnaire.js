// A questionnaire's draft is saved as the client types (a closed tab loses nothing).
(function () {
  "use strict";
  var form = document.getElementById("questionnaire-form");
  if (!form) { return; }
  var status = document.getElementById("draft-status");
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var timer = null;

  function answers() {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.type === "file") { return; }
      if (el.type === "checkbox") {
        out[el.name] = out[el.name] || [];
        if (el.checked) { out[el.name].push(el.value); }
      } else if (el.type === "radio") {
        if (el.checked) { out[el.name] = el.value; }
      } else {
        out[el.name] = el.value;
      }
    });
    return out;
  }

  function save() {
    timer = null;
    fetch(form.dataset.draftUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json",
                "X-CSRF-Token": csrf ? csrf.content : ""},
      body: JSON.stringify(answers())
    }).then(function (response) {
      if (response.ok) { status.textContent = "Черновик сохранён"; }
    }).catch(function () { status.textContent = "Черновик не сохранён: нет связи"; });
  }

  function later() {
    status.textContent = "";
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, 600);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
