// The deal type editor (admin/type.html): add and remove stages, tasks, rules and
// documents as rows of real fields.  New rows come from <template> elements whose names
// carry "__S__", replaced by the stage block's index so each stage's rows post together.
(function () {
  "use strict";
  const form = document.getElementById("type-form");
  const blocks = document.getElementById("stage-blocks");
  if (!form || !blocks) return;

  function fromTemplate(id, stage) {
    const source = document.getElementById(id);
    const html = source.innerHTML.replace(/__S__/g, String(stage));
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  function focusFirst(element) {
    const field = element.querySelector("input:not([type=hidden]), select");
    if (field) field.focus();
  }

  form.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button || button.type !== "button") return;
    if (button.classList.contains("row-add")) {
      const block = button.closest("[data-stage]");
      const rows = button.previousElementSibling;
      const row = fromTemplate(button.dataset.template, block ? block.dataset.stage : "");
      rows.appendChild(row);
      row.querySelectorAll("select.stage-target").forEach(refreshTargets);
      focusFirst(row);
    } else if (button.classList.contains("row-remove")) {
      const row = button.closest(".editor-row");
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (next) focusFirst(next);
    } else if (button.classList.contains("stage-remove")) {
      button.closest("[data-stage]").remove();
      document.getElementById("stage-add").focus();
    }
  });

  // A rule's target lists the stages as they stand in the form, new ones included (a rule
  // may point at a stage added in the same save); the chosen one stays chosen.
  function refreshTargets(select) {
    const chosen = select.value;
    const options = [["", ""]];
    blocks.querySelectorAll("[data-stage]").forEach(function (block) {
      const code = block.querySelector('input[name$="_code"]').value.trim();
      const name = block.querySelector('input[name$="_name"]').value.trim();
      if (code) options.push([code, name || code]);
    });
    select.replaceChildren.apply(select, options.map(function (pair) {
      const option = document.createElement("option");
      option.value = pair[0];
      option.textContent = pair[1];
      option.selected = pair[0] === chosen;
      return option;
    }));
  }
  form.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("select.stage-target")) {
      refreshTargets(event.target);
    }
  });

  document.getElementById("stage-add").addEventListener("click", function () {
    const index = Number(blocks.dataset.next || "0");
    blocks.dataset.next = String(index + 1);
    const block = fromTemplate("tpl-stage", index);
    blocks.appendChild(block);
    focusFirst(block);
  });
})();
