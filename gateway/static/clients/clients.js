// Client list: reorder the columns in the chooser (the form posts the checked columns in
// the order they stand).  Without JavaScript the chooser still shows and hides columns.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("#columns-form .column-list");
  if (!list) return;
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button.move");
    if (!button) return;
    const item = button.closest("li");
    if (button.dataset.move === "-1" && item.previousElementSibling) {
      list.insertBefore(item, item.previousElementSibling);
    } else if (button.dataset.move === "1" && item.nextElementSibling) {
      list.insertBefore(item.nextElementSibling, item);
    }
    button.focus();
  });
});
