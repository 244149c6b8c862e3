// Progress of a statement import: polls the job through the API while it is queued or
// running, moves the bar, and reloads the page when the import is done or refused.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box) { return; }
  var bar = document.getElementById("job-progress");
  var phase = document.getElementById("job-phase");
  var names = JSON.parse((document.getElementById("phase-names") || {}).textContent || "{}");
  function poll() {
    fetch(box.dataset.poll, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 2000); return; }
        if (job.status === "done" || job.status === "failed") { window.location.reload(); return; }
        if (job.progress) {
          bar.style.width = job.progress.percent + "%";
          bar.parentNode.setAttribute("aria-valuenow", job.progress.percent);
          phase.textContent = (names[job.progress.phase] || job.progress.phase) + " · " + job.progress.percent + "%";
        }
        setTimeout(poll, 700);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
}());
