// The CRM's website form: <div data-crm-form="ID"></div> + this script (data-crm = the
// CRM's address). Builds the form from its description, carries the signed start time
// and a hidden honeypot field, and posts the answers to the CRM. Text only (textContent),
// never HTML, so nothing from the form description runs as markup.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = (script && script.getAttribute("data-crm")) || "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  // The captcha, asked only after repeated failures from this address: a question in
  // plain text bound to its input by the label, so a screen reader reads it as it is.
  function showCaptcha(f, captcha) {
    var box = f.querySelector(".crm-captcha");
    if (!box) {
      box = el("div", {"class": "crm-captcha"});
      f.insertBefore(box, f.querySelector("button[type=submit]"));
    }
    box.textContent = "";
    var label = el("label", {}, captcha.question + " *");
    label.appendChild(el("br"));
    var input = el("input", {name: "captcha_answer", type: "text", inputmode: "numeric",
                             autocomplete: "off", required: "required"});
    label.appendChild(input);
    box.appendChild(label);
    box.appendChild(el("input", {type: "hidden", name: "captcha_token", value: captcha.token}));
    return input;
  }

  function build(holder, form) {
    var f = el("form", {"class": "crm-form", novalidate: "novalidate"});
    form.fields.forEach(function (field) {
      var label = el("label", {}, field.label + (field.required ? " *" : ""));
      var input = el(field.type === "textarea" ? "textarea" : "input",
                     {name: field.name, "data-field": field.name});
      if (field.type !== "textarea") input.setAttribute("type", field.type);
      if (field.required) input.setAttribute("required", "required");
      label.appendChild(el("br"));
      label.appendChild(input);
      f.appendChild(label);
      f.appendChild(el("br"));
    });
    // The honeypot: people never see it, bots fill it in.
    var trap = el("div", {style: "position:absolute;left:-10000px", "aria-hidden": "true"});
    trap.appendChild(el("input", {name: "website", tabindex: "-1", autocomplete: "off"}));
    f.appendChild(trap);
    var consent = el("label", {"class": "crm-consent"});
    consent.appendChild(el("input", {type: "checkbox", name: "consent", required: "required"}));
    consent.appendChild(document.createTextNode(" " + form.consent_text));
    f.appendChild(consent);
    f.appendChild(el("br"));
    f.appendChild(el("button", {type: "submit"}, "Отправить"));
    if (form.captcha) showCaptcha(f, form.captcha);
    var status = el("p", {"class": "crm-status", role: "status"});
    f.appendChild(status);
    f.addEventListener("submit", function (event) {
      event.preventDefault();
      var values = {token: form.token, consent_version: form.consent_version,
                    page_url: location.href, referrer: document.referrer || ""};
      Array.prototype.forEach.call(f.elements, function (input) {
        if (!input.name) return;
        values[input.name] = input.type === "checkbox" ? input.checked : input.value;
      });
      // The tags come with the page's own address; a landing page that dropped them
      // (a redirect, a second page of the site) may still have them on its referrer.
      var tagged = [new URLSearchParams(location.search)];
      try { tagged.push(new URL(document.referrer).searchParams); } catch (e) { /* none */ }
      ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(
        function (k) {
          for (var i = 0; i < tagged.length; i++) {
            if (tagged[i].get(k)) { values[k] = tagged[i].get(k); return; }
          }
        });
      fetch(base + "/f/" + encodeURIComponent(form.public_id) + "/submit", {
        method: "POST", credentials: "omit", headers: {"Content-Type": "application/json"},
        body: JSON.stringify(values)
      }).then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (res) {
          var error = res[1].error || {};
          if (res[0] === 200) {
            f.reset();
            var asked = f.querySelector(".crm-captcha");
            if (asked) asked.parentNode.removeChild(asked);
            status.textContent = "Спасибо! Мы свяжемся с вами.";
            return;
          }
          status.textContent = error.message || "Ошибка";
          if (error.field === "captcha" && error.params && error.params.captcha) {
            showCaptcha(f, error.params.captcha).focus();
          }
        }).catch(function () { status.textContent = "Не удалось отправить: попробуйте ещё раз."; });
    });
    holder.appendChild(f);
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-crm-form]"), function (holder) {
    fetch(base + "/f/" + encodeURIComponent(holder.getAttribute("data-crm-form")),
          {credentials: "omit"})
      .then(function (r) { return r.json(); })
      .then(function (form) { if (form.fields) build(holder, form); });
  });
})();
