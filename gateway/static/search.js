// The header's global search: results as you type, arrow keys to move, Enter to open,
// Escape to close.  The server answers /search?q= as JSON; without JavaScript the form
// opens the same search as a page.
(function () {
  "use strict";
  const form = document.getElementById("global-search-form");
  if (!form) return;
  const input = document.getElementById("global-search");
  const box = document.getElementById("global-search-results");
  const groups = JSON.parse(form.dataset.groups || "{}");
  let options = [];
  let active = -1;
  let timer = null;
  let asked = 0;

  function close() {
    box.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function select(index) {
    options.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function render(answer) {
    box.textContent = "";
    options = [];
    answer.groups.forEach(function (group) {
      const title = document.createElement("div");
      title.className = "group";
      title.setAttribute("role", "presentation");
      title.textContent = groups[group.kind] || group.kind;
      box.appendChild(title);
      group.items.forEach(function (item) {
        const option = document.createElement("a");
        option.href = item.url;
        option.id = "search-option-" + options.length;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = item.title;
        if (item.subtitle) {
          const sub = document.createElement("small");
          sub.textContent = item.subtitle;
          option.appendChild(sub);
        }
        box.appendChild(option);
        options.push(option);
      });
    });
    if (!options.length || answer.unavailable.length) {
      const note = document.createElement("div");
      note.className = "empty";
      note.textContent = options.length ? form.dataset.partial : form.dataset.nothing;
      box.appendChild(note);
    }
    box.hidden = false;
    input.setAttribute("aria-expanded", "true");
    select(options.length ? 0 : -1);
  }

  function ask() {
    const text = input.value.trim();
    if (text.length < 2) { close(); return; }
    const mine = ++asked;
    fetch(form.action + "?q=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer && mine === asked && answer.q === input.value.trim()) render(answer); })
      .catch(function () { /* the form still opens the results page */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      select((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && options.length) {
      event.preventDefault();
      select((active - 1 + options.length) % options.length);
    } else if (event.key === "Enter" && active >= 0 && !box.hidden) {
      event.preventDefault();
      window.location.href = options[active].href;
    } else if (event.key === "Escape") {
      close();
    }
  });
  document.addEventListener("click", function (event) {
    if (!form.contains(event.target)) close();
  });
})();
