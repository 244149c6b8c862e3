// The deals board: drag and drop between kanban columns (SortableJS), infinite scroll of
// columns and table rows, opening a deal by clicking its card or row, and picking a client
// by name in the "new deal" form.  Server-rendered pages work without it, except dragging.
(function () {
  "use strict";
  const csrf = document.querySelector('input[name="csrf_token"]').value;
  const message = document.getElementById("board-message");

  function say(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function query(root) {
    return root.dataset.query ? "&" + root.dataset.query : "";
  }

  // ---------------------------------------------------------------- open on click
  document.addEventListener("click", function (event) {
    const target = event.target.closest(".deal-card, .deal-row");
    if (!target || event.target.closest("a, button, input, select, details")) return;
    window.location.href = target.dataset.href;
  });

  // ------------------------------------------------------------- infinite scroll
  function watch(container, loadUrl) {
    const observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        const end = entry.target;
        const after = end.dataset.next;
        observer.unobserve(end);
        if (!after) return;
        fetch(loadUrl(after), {headers: {"Accept": "text/html"}})
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) {
            end.insertAdjacentHTML("afterend", html);
            end.remove();
            const next = container.querySelector(".page-end");
            if (next) observer.observe(next);
          })
          .catch(function () { observer.observe(end); });
      });
    }, {root: container.tagName === "TBODY" ? null : container, rootMargin: "200px"});
    const end = container.querySelector(".page-end");
    if (end) observer.observe(end);
  }

  const kanban = document.getElementById("kanban");
  const table = document.getElementById("deals-table");
  if (table) {
    watch(table.querySelector("tbody"), function (after) {
      return "/deals/more?after=" + after + query(table);
    });
  }
  if (!kanban) return;
  kanban.querySelectorAll(".cards").forEach(function (cards) {
    watch(cards, function (after) {
      return "/deals/more?column=" + encodeURIComponent(cards.dataset.status) +
        "&after=" + after + query(kanban);
    });
  });

  // ------------------------------------------------------------- drag and drop
  const dialog = document.getElementById("loss-dialog");

  function askLossReason() {
    return new Promise(function (resolve) {
      dialog.returnValue = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        if (dialog.returnValue !== "ok") return resolve(null);
        const form = dialog.querySelector("form");
        resolve({loss_reason_id: Number(form.loss_reason_id.value),
                 loss_comment: form.loss_comment.value || null});
      });
      dialog.showModal();
    });
  }

  function putBack(event) {
    const before = event.from.children[event.oldIndex] || null;
    event.from.insertBefore(event.item, before);
  }

  // "1402.5" -> "1 402,50 ₽", as the server's money filter writes it
  function money(value) {
    const parts = String(value).split(".");
    return parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f") + "," +
      ((parts[1] || "") + "00").slice(0, 2) + "\u202f₽";
  }

  function refreshTotals() {
    fetch("/api/v1/deals/board?per_column=1" + query(kanban))
      .then(function (r) { return r.json(); })
      .then(function (board) {
        board.columns.forEach(function (col) {
          const column = kanban.querySelector('.column[data-status="' + col.status.code + '"]');
          if (!column) return;
          column.querySelector(".col-count").textContent = col.count;
          column.querySelector(".col-sum").textContent = money(col.amount);
        });
      });
  }

  function move(event) {
    if (event.from === event.to) return;
    const card = event.item;
    const column = event.to.closest(".column");
    const body = {status: column.dataset.status, version: Number(card.dataset.version)};
    const ready = column.dataset.kind === "lost" ? askLossReason() : Promise.resolve({});
    ready.then(function (extra) {
      if (extra === null) return putBack(event);
      return fetch("/api/v1/deals/" + card.dataset.id + "/status", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify(Object.assign(body, extra))
      }).then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            putBack(event);
            say((data.error && data.error.message) || response.statusText);
            return;
          }
          message.hidden = true;
          card.dataset.version = data.version;
          refreshTotals();
        });
      });
    }).catch(function () { putBack(event); say(document.title); });
  }

  kanban.querySelectorAll(".cards").forEach(function (cards) {
    Sortable.create(cards, {group: "deals", animation: 120, draggable: ".deal-card",
                            onEnd: move});
  });
})();

// The "new deal" form: type a client's name, choose from what the clients service finds.
(function () {
  "use strict";
  const input = document.querySelector('input[name="client_query"]');
  if (!input) return;
  const hidden = input.form.querySelector('input[name="client_id"]');
  const list = document.getElementById("client-options");
  let timer = null;
  input.addEventListener("input", function () {
    const match = /#(\d+)$/.exec(input.value);
    hidden.value = match ? match[1] : (/^\d+$/.test(input.value) ? input.value : "");
    clearTimeout(timer);
    if (match || input.value.length < 2) return;
    timer = setTimeout(function () {
      fetch("/api/v1/clients?per_page=10&q=" + encodeURIComponent(input.value))
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (found) {
          list.replaceChildren.apply(list, found.items.map(function (c) {
            const option = document.createElement("option");
            option.value = c.name + " · #" + c.id;
            return option;
          }));
        });
    }, 200);
  });
})();
