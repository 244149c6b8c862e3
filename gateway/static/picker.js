// Search-as-you-type pickers: a <select data-picker="clients|payments"> asks /pick/<kind>
// as the user types (tom-select, from npm).  Without the library the select still works
// with the options the page rendered.
(function () {
  "use strict";
  if (!window.TomSelect) return;
  document.querySelectorAll("select[data-picker]").forEach(function (select) {
    const kind = select.dataset.picker;
    new window.TomSelect(select, {
      valueField: "value",
      labelField: "text",
      searchField: ["text"],
      maxOptions: 20,
      closeAfterSelect: true,
      // leave the field once a value is chosen: the form settles before the next click
      onItemAdd: function () { this.blur(); },
      loadThrottle: 200,
      shouldLoad: function (query) { return query.trim().length >= 2; },
      load: function (query, callback) {
        fetch("/pick/" + encodeURIComponent(kind) + "?q=" + encodeURIComponent(query),
              { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(callback)
          .catch(function () { callback(); });
      },
      render: {
        no_results: function () {
          return '<div class="no-results">' + (select.dataset.nothing || "—") + "</div>";
        }
      }
    });
  });
})();
