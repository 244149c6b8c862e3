// Inline editing: an element with data-inline-url and data-inline-field shows its value;
// activating it (click, Enter) turns it into an input; Enter or leaving the field saves it
// with PATCH (JSON, the CSRF header, the record's version), Escape cancels.  A toast says
// whether it worked; on success every version field of the page follows the record.
(function () {
  "use strict";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const toasts = document.getElementById("toasts");

  function toast(text, failed) {
    if (!toasts) return;
    const item = document.createElement("div");
    item.className = "toast" + (failed ? " toast-error" : "");
    item.setAttribute("role", failed ? "alert" : "status");
    item.textContent = text;
    toasts.appendChild(item);
    setTimeout(function () { item.remove(); }, failed ? 8000 : 3000);
  }

  // The value being edited: data-inline-value when the element shows it formatted (an
  // amount, or a dash for an empty field), else its text.
  function current(shown) {
    return "inlineValue" in shown.dataset ? shown.dataset.inlineValue : shown.textContent.trim();
  }

  // How a saved value reads: amounts as the pages print them ("120 000,50 ₽"), an empty
  // field as its placeholder.
  function shownText(shown, value) {
    if (value === "") return shown.dataset.inlineEmpty || "";
    const day = shown.dataset.inlineType === "date" && /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (day) return day[3] + "." + day[2] + "." + day[1];
    if (shown.dataset.inlineMoney !== undefined && value !== "" && !isNaN(Number(value))) {
      const number = new Intl.NumberFormat("ru-RU", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
        .format(Number(value)).replace(/\s/g, "\u202f");
      return number + "\u202f" + (shown.dataset.inlineMoney || "₽");
    }
    return value;
  }

  function edit(shown) {
    if (shown.dataset.editing) return;
    shown.dataset.editing = "1";
    const input = document.createElement("input");
    input.value = current(shown);
    input.className = "inline-input";
    input.setAttribute("aria-label", shown.dataset.inlineLabel || "");
    if (shown.dataset.inlineMode) input.inputMode = shown.dataset.inlineMode;
    if (shown.dataset.inlineType) input.type = shown.dataset.inlineType;
    shown.hidden = true;
    shown.after(input);
    input.focus();
    input.select();
    let done = false;

    function finish(save) {
      if (done) return;
      done = true;
      const value = input.value.trim();
      input.remove();
      shown.hidden = false;
      delete shown.dataset.editing;
      if (!save || value === current(shown)) {
        shown.focus();
        return;
      }
      const body = {};
      body[shown.dataset.inlineField] = value;
      const version = document.querySelector('input[name="version"]');
      if (version) body.version = Number(version.value);
      fetch(shown.dataset.inlineUrl, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (answer) { return { ok: r.ok, answer: answer }; });
      }).then(function (result) {
        if (!result.ok) {
          toast((result.answer.error && result.answer.error.message) || shown.dataset.inlineFailed, true);
          return;
        }
        const saved = result.answer[shown.dataset.inlineField];
        shown.dataset.inlineValue = saved == null ? "" : String(saved);
        shown.textContent = shownText(shown, shown.dataset.inlineValue);
        document.querySelectorAll('input[name="version"]').forEach(function (v) {
          v.value = result.answer.version;
        });
        toast(shown.dataset.inlineSaved);
      }).catch(function () { toast(shown.dataset.inlineFailed, true); });
      shown.focus();
    }

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      if (event.key === "Escape") { finish(false); }
    });
    input.addEventListener("blur", function () { finish(true); });
  }

  document.querySelectorAll("[data-inline-url]").forEach(function (shown) {
    shown.setAttribute("role", "button");
    shown.tabIndex = 0;
    shown.addEventListener("click", function () { edit(shown); });
    shown.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); edit(shown); }
    });
  });
})();
