// An import's page, kept live: polls progress.json every second until the import is
// finished or failed, and moves the bar and the counts. Without it the page shows the
// progress as it was when loaded (and a Refresh link).
(function () {
  "use strict";

  var root = document.querySelector("[data-import]");
  if (!root) return;
  var url = root.getAttribute("data-progress-url");
  var bar = root.querySelector("[data-bar]");
  var fmt = new Intl.NumberFormat("en");
  var FINAL = ["finished", "failed"];
  var delay = 1000;

  function field(name) {
    return root.querySelector("[data-field='" + name + "']");
  }

  function show(name, visible) {
    root.querySelectorAll("[data-when='" + name + "']").forEach(function (el) { el.hidden = !visible; });
  }

  function render(job) {
    root.setAttribute("data-state", job.state);
    var state = field("state");
    state.textContent = job.state;
    state.className = "import-state " + job.state;
    field("percent").textContent = job.percent;
    bar.value = job.percent;
    bar.textContent = job.percent + " %";
    ["rows", "imported", "updated", "rejected"].forEach(function (name) {
      field(name).textContent = fmt.format(job[name]);
    });
    var done = FINAL.indexOf(job.state) >= 0;
    show("waiting", !done);
    show("finished", job.state === "finished");
    show("rejects", job.has_rejects);
    var seconds = field("seconds");
    if (seconds && job.seconds !== null) seconds.textContent = job.seconds;
    var error = field("error");
    error.hidden = !job.error;
    error.textContent = job.error ? "Nothing was imported: " + job.error : "";
    return done;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (job) {
        delay = 1000;
        if (!render(job)) window.setTimeout(poll, delay);
      })
      .catch(function () {
        // The server restarting or a lost connection: try again, less often.
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }

  if (FINAL.indexOf(root.getAttribute("data-state")) < 0) window.setTimeout(poll, 300);
})();
