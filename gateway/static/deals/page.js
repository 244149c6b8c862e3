// The deal page: images open large in a lightbox, line items add up as you type (the
// server computes the saved total again), and the loss reason shows only for a loss.
(function () {
  "use strict";

  // ------------------------------------------------------------------- lightbox
  document.addEventListener("click", function (event) {
    const link = event.target.closest("a.thumb-link");
    if (!link) return;
    event.preventDefault();
    const box = document.createElement("div");
    box.className = "lightbox";
    box.setAttribute("role", "dialog");
    const image = document.createElement("img");
    image.src = link.href;
    image.alt = link.querySelector("img").alt;
    box.appendChild(image);
    box.addEventListener("click", function () { box.remove(); });
    document.addEventListener("keydown", function onKey(e) {
      if (e.key === "Escape") { box.remove(); document.removeEventListener("keydown", onKey); }
    });
    document.body.appendChild(box);
  });

  // --------------------------------------------------------------- line items
  // Cents as integers: a browser's floats must not invent kopecks.
  function cents(text) {
    const value = String(text || "").replace(/\s/g, "").replace(",", ".");
    return /^\d+(\.\d{0,2})?$/.test(value) ? Math.round(parseFloat(value) * 100) : null;
  }

  function money(c) {
    const whole = Math.floor(c / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    return whole + "," + String(c % 100).padStart(2, "0") + "\u202f₽";
  }

  function recount(form) {
    let total = 0;
    form.querySelectorAll("tr.line").forEach(function (row) {
      const price = cents(row.querySelector('[name="line_unit_price"]').value);
      const qty = parseFloat((row.querySelector('[name="line_quantity"]').value || "1").replace(",", "."));
      const discount = parseFloat((row.querySelector('[name="line_discount"]').value || "0").replace(",", "."));
      const cell = row.querySelector(".line-amount");
      if (price === null || isNaN(qty) || isNaN(discount)) { cell.textContent = ""; return; }
      const amount = Math.round(price * qty * (100 - discount) / 100);
      cell.textContent = money(amount);
      total += amount;
    });
    form.querySelector(".lines-total").textContent = money(total);
  }

  document.querySelectorAll("form.lines-form").forEach(function (form) {
    form.addEventListener("input", function () { recount(form); });
    form.querySelector(".add-line").addEventListener("click", function () {
      const rows = form.querySelector("tbody");
      const copy = rows.querySelector("tr.line:last-child").cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      copy.querySelector(".line-amount").textContent = "";
      rows.appendChild(copy);
    });
  });

  // ---------------------------------------------------------------- loss reason
  const status = document.querySelector('#status-form select[name="status"]');
  if (status) {
    const toggle = function () {
      const lost = status.selectedOptions[0].dataset.kind === "lost";
      document.querySelectorAll("#status-form .loss-fields").forEach(function (field) {
        field.hidden = !lost;
      });
    };
    status.addEventListener("change", toggle);
    toggle();
  }
})();
