// The calculator's catalogue picker: search goods and services as you type (tom-select,
// from npm); a pick fills the first empty line (or a new one) with the item's name, kind,
// price and catalogue id.  Lines typed by hand stay possible: the picker only fills them.
(function () {
  "use strict";
  if (!window.TomSelect) return;
  const select = document.querySelector("select[data-catalogue-pick]");
  if (!select) return;
  const form = select.closest("form");
  const url = select.dataset.cataloguePick;
  const found = {};

  function emptyRow() {
    const rows = form.querySelectorAll("tbody tr.line");
    for (const row of rows) {
      const name = row.querySelector('[name="line_name"]').value.trim();
      const price = row.querySelector('[name="line_unit_price"]').value.trim();
      if (!name && !price) return row;
    }
    form.querySelector(".add-line").click();
    const all = form.querySelectorAll("tbody tr.line");
    return all[all.length - 1];
  }

  function fill(item) {
    const row = emptyRow();
    row.querySelector('[name="line_name"]').value = item.name;
    row.querySelector('[name="line_unit_price"]').value = item.price;
    row.querySelector('[name="line_catalogue_id"]').value = item.value;
    const kind = row.querySelector('[name="line_kind"]');
    if (kind) kind.value = item.kind;
    const qty = row.querySelector('[name="line_quantity"]');
    if (!qty.value) qty.value = "1";
    form.dispatchEvent(new Event("input", { bubbles: true }));
  }

  const picker = new window.TomSelect(select, {
    valueField: "value",
    labelField: "text",
    searchField: ["text"],
    maxOptions: 20,
    loadThrottle: 200,
    shouldLoad: function (query) { return query.trim().length >= 1; },
    load: function (query, callback) {
      fetch(url + "?q=" + encodeURIComponent(query), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (items) {
          items.forEach(function (item) { found[item.value] = item; });
          callback(items);
        })
        .catch(function () { callback(); });
    },
    onItemAdd: function (value) {
      const item = found[value];
      if (item) fill(item);
      this.clear(true);
      this.blur();
    },
    render: {
      no_results: function () {
        return '<div class="no-results">' + (select.dataset.nothing || "—") + "</div>";
      }
    }
  });
  // a picked item fills a line; the picker itself is not a form field
  select.removeAttribute("name");
  void picker;
})();
